// Types of the app IPC contract (docs/ipc-contract.md). Field names are exactly those on the wire.

export const STATES = [
  'idle',
  'registering',
  'registered',
  'retrying',
  'failed',
  'offline',
  'unregistered',
] as const;
export type RegistrationState = (typeof STATES)[number];

export const PROBLEM_CODES = [
  'wrong_password',
  'forbidden',
  'unknown_extension',
  'rejected',
  'timeout',
  'dns_failure',
  'connection_refused',
  'tls_certificate',
  'server_error',
  'network_down',
  'transport_error',
  'invalid_response',
  'credentials',
  'invalid_settings',
  'extension_in_use',
] as const;
export type KnownProblemCode = (typeof PROBLEM_CODES)[number];

export type Transport = 'udp' | 'tcp' | 'tls';
export const TRANSPORTS: readonly Transport[] = ['udp', 'tcp', 'tls'];

export interface Problem {
  /** One of PROBLEM_CODES; kept as string so a newer backend cannot break the UI. */
  code: string;
  message: string;
  action: string;
  detail: string;
}

export interface BindingInfo {
  contact: string;
  expires_in: number | null;
  ours: boolean;
  /** Ours, but left from before a crash or a network change; removed with the next REGISTER. */
  stale?: boolean;
}

/** Set while VICIfast refreshes on another lifetime than the phone server granted. */
export interface ExpiryAdjustment {
  granted: number;
  refreshed_as: number;
  /** "below_minimum" | "above_requested"; kept as string for forward compatibility. */
  reason: string;
  message: string;
}

/** A device other than this computer holding a binding of the extension. */
export interface OtherDevice {
  contact: string;
  /** "ip:port" where the registrar sees it, when known. */
  address: string | null;
  user_agent: string | null;
  expires_in: number | null;
}

/** Set on a status while another device holds the extension instead of this computer. */
export interface ExtensionInUse {
  account: string;
  others: OtherDevice[];
  /** "binding_check" | "qualify_stopped" | "registration"; kept as string. */
  detected_by: string;
  /** What happened, naming the other device. */
  message: string;
  /** What "Use this computer" does. */
  take_over_note: string;
}

/** Payload of the `status` event and `UiState.status`. */
export interface StatusEvent {
  at: string;
  account: string;
  /** One of STATES; kept as string for forward compatibility. */
  state: string;
  cause: string;
  contact: string | null;
  server: string | null;
  transport: string;
  local_address: string | null;
  expires_in: number | null;
  next_refresh_in: number | null;
  next_attempt_in: number | null;
  problem: Problem | null;
  bindings: BindingInfo[];
  expiry_adjusted?: ExpiryAdjustment | null;
  /** Absent from an older backend. */
  extension_in_use?: ExtensionInUse | null;
}

export interface TimelineEntry {
  at: string;
  kind: string;
  text: string;
}

export interface TraceEvent {
  at: string;
  account: string;
  /** "sent" or "received". */
  direction: string;
  remote: string;
  transport: string;
  text: string;
}

export interface Settings {
  server: string;
  extension: string;
  auth_user: string | null;
  domain: string | null;
  transport: Transport;
  port: number | null;
  outbound_proxy: string | null;
  expires: number;
  start_at_login: boolean;
}

/** Another saved account (added with `vicifast-cli account set`), registered beside this one. */
export interface OtherAccount {
  account: string;
  extension: string;
  server: string;
  /** One of STATES, or null before its registration reports. */
  state: string | null;
  /** What went wrong, in plain words. */
  problem: string | null;
}

/** Softphone states (`SoftphoneState` in the engine). */
export const SOFTPHONE_STATES = [
  'not_registered',
  'checking',
  'answering',
  'not_answering',
] as const;
export type KnownSoftphoneState = (typeof SOFTPHONE_STATES)[number];

/** What the agent must change in the softphone (`SoftphoneProblemCode` in the engine). */
export const SOFTPHONE_PROBLEM_CODES = [
  'wrong_password',
  'wrong_extension',
  'too_many_attempts',
  'also_registered_directly',
] as const;
export type KnownSoftphoneProblemCode = (typeof SOFTPHONE_PROBLEM_CODES)[number];

export interface SoftphoneProblem {
  /** One of SOFTPHONE_PROBLEM_CODES; kept as string for forward compatibility. */
  code: string;
  message: string;
  action: string;
  detail: string;
}

/** The edge proxy's report on the softphone, stamped. */
export interface SoftphoneStatus {
  at: string;
  account: string;
  /** One of SOFTPHONE_STATES; kept as string for forward compatibility. */
  state: string;
  /** Its User-Agent as it last introduced itself: another program's text. */
  user_agent: string | null;
  contact: string | null;
  transport: string | null;
  /** Seconds until its registration with VICIfast lapses. */
  expires_in: number | null;
  problem: SoftphoneProblem | null;
}

/** The softphone of one account that has one (`SoftphoneView` in the tray process). */
export interface Softphone {
  account: string;
  extension: string;
  /** The softphone's outbound proxy: where VICIfast listens (UDP and TCP); null when not. */
  listen: string | null;
  /** Why VICIfast is not listening for the softphone. */
  listen_problem: string | null;
  /** Null before the first report. */
  status: SoftphoneStatus | null;
}

export interface UiState {
  settings: Settings | null;
  has_password: boolean;
  status: StatusEvent | null;
  timeline: TimelineEntry[];
  trace: TraceEvent[];
  interface: string | null;
  /** Absent from an older backend. */
  other_accounts?: OtherAccount[];
  /** One per running account with a softphone; absent from an older backend. */
  softphones?: Softphone[];
}

/** How a command rejects. */
export interface IpcError {
  code: string;
  message: string;
  field?: string;
}

export const EVENT_STATUS = 'status';
export const EVENT_TIMELINE = 'timeline';
export const EVENT_TRACE = 'trace';
/** Payload: OtherAccount[], the whole list. */
export const EVENT_ACCOUNTS = 'accounts';
/** Payload: Softphone[], the whole list. */
export const EVENT_SOFTPHONES = 'softphones';

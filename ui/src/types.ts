// The window's data on the wire (docs/ipc-contract.md). The shapes are generated from the Rust
// types that produce them into ./generated/ (`make ui-types`; `cargo test` fails when they are
// out of date): this file gives them the names the window uses and adds what only the UI needs.

import type { CommandError } from './generated/CommandError';
import type { ProblemCode } from './generated/ProblemCode';
import type { RegistrationState } from './generated/RegistrationState';
import type { SoftphoneProblemCode } from './generated/SoftphoneProblemCode';
import type { SoftphoneState } from './generated/SoftphoneState';
import type { SoftphoneStatus } from './generated/SoftphoneStatus';
import type { SoftphoneView } from './generated/SoftphoneView';
import type { Stamped } from './generated/Stamped';
import type { Status } from './generated/Status';
import type { TraceEntry } from './generated/TraceEntry';
import type { Transport } from './generated/Transport';
import type { UiSettings } from './generated/UiSettings';

export type { BindingInfo } from './generated/BindingInfo';
export type { Cause } from './generated/Cause';
export type { Direction } from './generated/Direction';
export type { ExpiryAdjustment } from './generated/ExpiryAdjustment';
export type { ExpiryAdjustmentReason } from './generated/ExpiryAdjustmentReason';
export type { ExtensionInUse } from './generated/ExtensionInUse';
export type { InUseDetection } from './generated/InUseDetection';
export type { OtherAccount } from './generated/OtherAccount';
export type { OtherDevice } from './generated/OtherDevice';
export type { Problem } from './generated/Problem';
export type { SoftphoneProblem } from './generated/SoftphoneProblem';
export type { TimelineEntry } from './generated/TimelineEntry';
export type { UiState } from './generated/UiState';
export type {
  ProblemCode,
  RegistrationState,
  SoftphoneProblemCode,
  SoftphoneState,
  SoftphoneStatus,
  Stamped,
  Status,
  TraceEntry,
  Transport,
};

/** Payload of the `status` event and `UiState.status`. */
export type StatusEvent = Stamped<Status>;
/** Payload of the `trace` event, and each entry of `UiState.trace`. */
export type TraceEvent = Stamped<TraceEntry>;
/** The settings form (`UiSettings` in the tray process). */
export type Settings = UiSettings;
/** The softphone of one account that has one (`SoftphoneView` in the tray process). */
export type Softphone = SoftphoneView;
/** The edge proxy's last report on a softphone, stamped. */
export type SoftphoneReport = Stamped<SoftphoneStatus>;
/** How a command rejects (`CommandError` in the tray process). */
export type IpcError = CommandError;

/**
 * Every member of a string union, in the order given. Listing one the union lacks, or leaving
 * one out, does not compile: the lists below follow the Rust enums they mirror.
 */
function allOf<U extends string>(members: Record<U, true>): readonly U[] {
  return Object.keys(members) as U[];
}

export const STATES = allOf<RegistrationState>({
  idle: true,
  registering: true,
  registered: true,
  retrying: true,
  failed: true,
  offline: true,
  unregistered: true,
});

/**
 * The problem codes the UI has guidance for. A code is still looked up as a plain string: an
 * older window may meet a newer tray process.
 */
export const PROBLEM_CODES = allOf<ProblemCode>({
  wrong_password: true,
  forbidden: true,
  unknown_extension: true,
  rejected: true,
  timeout: true,
  dns_failure: true,
  connection_refused: true,
  tls_certificate: true,
  server_error: true,
  network_down: true,
  transport_error: true,
  invalid_response: true,
  credentials: true,
  invalid_settings: true,
  extension_in_use: true,
  settings_file: true,
});

export const TRANSPORTS = allOf<Transport>({ udp: true, tcp: true, tls: true });

export const SOFTPHONE_STATES = allOf<SoftphoneState>({
  not_registered: true,
  checking: true,
  answering: true,
  not_answering: true,
});

/** What the agent must change in the softphone. */
export const SOFTPHONE_PROBLEM_CODES = allOf<SoftphoneProblemCode>({
  wrong_password: true,
  wrong_extension: true,
  too_many_attempts: true,
  also_registered_directly: true,
});

export const EVENT_STATUS = 'status';
export const EVENT_TIMELINE = 'timeline';
export const EVENT_TRACE = 'trace';
/** Payload: OtherAccount[], the whole list. */
export const EVENT_ACCOUNTS = 'accounts';
/** Payload: Softphone[], the whole list. */
export const EVENT_SOFTPHONES = 'softphones';

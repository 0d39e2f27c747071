// The window: holds the UI state, renders it, and wires buttons to backend commands.

import { byId, copyText, h, setText } from './dom';
import { formatClock, parseAt } from './format';
import { churnText, guidanceFor, hasGuidance, networkChurn, type GuidanceTarget } from './guidance';
import { stateIcon } from './icons';
import { mergeTimeline, mergeTrace } from './lists';
import { headerOf, lookOf, statusView, nextStateSince } from './model';
import { redactSip } from './redact';
import { orderSoftphones, softphoneLook, withSoftphone, type SoftphoneLook } from './softphone';
import { traceBody, traceHeading, traceToText } from './trace';
import {
  EVENT_ACCOUNTS,
  EVENT_SOFTPHONES,
  EVENT_STATUS,
  EVENT_TIMELINE,
  EVENT_TRACE,
  type IpcError,
  type OtherAccount,
  type Softphone,
  type StatusEvent,
  type TimelineEntry,
  type TraceEvent,
  type UiState,
} from './types';
import {
  EXPIRES_DEFAULT,
  fieldOfBackendError,
  validateSettings,
  type FieldName,
  type SettingsInput,
} from './validate';

export interface Backend {
  invoke<T>(cmd: string, args?: Record<string, unknown>): Promise<T>;
  listen<T>(event: string, handler: (payload: T) => void): Promise<() => void>;
}

const FIELDS: FieldName[] = [
  'server',
  'extension',
  'password',
  'transport',
  'port',
  'auth_user',
  'domain',
  'outbound_proxy',
  'expires',
  'start_at_login',
];

const TIMELINE_MARKS: Record<string, string> = {
  registered: '✓',
  refreshed: '↻',
  network_changed: '⇄',
  failed: '✕',
  retrying: '↻',
  unregistered: '−',
  incoming_call: '☎',
  softphone: '☏',
  refused_call: '✕',
  call_moved: '⚠',
  extension_in_use: '⚠',
  offline: '⌀',
  credentials_changed: '⚿',
};

export function errorInfo(e: unknown): IpcError {
  if (e && typeof e === 'object') {
    const o = e as Record<string, unknown>;
    const message = typeof o['message'] === 'string' ? o['message'] : JSON.stringify(e);
    const code = typeof o['code'] === 'string' ? o['code'] : 'error';
    const field = typeof o['field'] === 'string' ? o['field'] : undefined;
    return field === undefined ? { code, message } : { code, message, field };
  }
  if (typeof e === 'string' && e !== '') return { code: 'error', message: e };
  return { code: 'error', message: 'Something went wrong.' };
}

export class App {
  private ui: UiState | null = null;
  private since: { state: string; since: number } | null = null;
  private lastAnnounced = '';
  private problemKey = '';
  /** What was last said about each account's softphone, to announce changes only. */
  private softphoneSaid = new Map<string, string>();
  private timer: number | undefined;
  private unlisten: (() => void)[] = [];

  constructor(
    private readonly backend: Backend,
    private readonly now: () => number = () => Date.now(),
  ) {}

  async start(): Promise<void> {
    this.wire();
    // Listen before asking for the state, so nothing pushed in between is lost.
    const early: {
      status: StatusEvent[];
      timeline: TimelineEntry[];
      trace: TraceEvent[];
      accounts: OtherAccount[] | null;
      softphones: Softphone[] | null;
    } = {
      status: [],
      timeline: [],
      trace: [],
      accounts: null,
      softphones: null,
    };
    let loaded = false;
    try {
      this.unlisten.push(
        await this.backend.listen<StatusEvent>(EVENT_STATUS, (s) =>
          loaded ? this.onStatus(s) : early.status.push(s),
        ),
        await this.backend.listen<TimelineEntry>(EVENT_TIMELINE, (e) =>
          loaded ? this.onTimeline([e]) : early.timeline.push(e),
        ),
        await this.backend.listen<TraceEvent>(EVENT_TRACE, (e) =>
          loaded ? this.onTrace([e]) : early.trace.push(e),
        ),
        await this.backend.listen<OtherAccount[]>(EVENT_ACCOUNTS, (list) => {
          if (loaded) this.onOtherAccounts(list);
          else early.accounts = list;
        }),
        await this.backend.listen<Softphone[]>(EVENT_SOFTPHONES, (list) => {
          if (loaded) this.onSoftphones(list);
          else early.softphones = list;
        }),
      );
      const state = await this.backend.invoke<UiState>('get_state');
      this.load(state);
    } catch (e) {
      byId('loading').hidden = true;
      const box = byId('load-error');
      box.textContent = errorInfo(e).message;
      box.hidden = false;
      return;
    }
    loaded = true;
    for (const s of early.status) this.onStatus(s, false);
    if (early.timeline.length) this.onTimeline(early.timeline);
    if (early.trace.length) this.onTrace(early.trace);
    if (early.accounts) this.onOtherAccounts(early.accounts);
    if (early.softphones) this.onSoftphones(early.softphones, false);
    this.timer = window.setInterval(() => this.tick(), 1000);
  }

  stop(): void {
    window.clearInterval(this.timer);
    for (const u of this.unlisten) u();
  }

  // ----- state -----

  private load(state: UiState): void {
    this.ui = {
      ...state,
      timeline: mergeTimeline([], state.timeline ?? []),
      trace: mergeTrace([], state.trace ?? []),
    };
    this.since = state.status ? nextStateSince(null, state.status, this.now()) : null;
    this.lastAnnounced = state.status ? this.announceKey(state.status) : '';
    this.softphoneSaid = new Map(
      (state.softphones ?? []).map((s) => [s.account, softphoneLook(s).announcement]),
    );
    byId('loading').hidden = true;
    this.renderAll();
    if (!state.settings) this.openSettings(null);
    else this.showStatusView(false);
  }

  private onStatus(status: StatusEvent, announce = true): void {
    if (!this.ui) return;
    const cur = this.ui.status;
    const previousLocal = cur?.local_address ?? null;
    const curAt = parseAt(cur?.at);
    const newAt = parseAt(status.at);
    if (cur && curAt !== null && newAt !== null && newAt < curAt) return; // stale
    this.ui.status = status;
    this.since = nextStateSince(this.since, status, this.now());
    this.renderStatus();
    const key = this.announceKey(status);
    if (announce && key !== this.lastAnnounced) {
      this.announce(statusView(status, this.since.since, this.now(), null).announcement);
    }
    this.lastAnnounced = key;
    // The interface name is only in get_state: ask again when the local address moved (a
    // first registration, a new flow after a network change).
    if ((status.local_address ?? null) !== previousLocal && status.local_address) {
      void this.refreshInterface();
    }
  }

  private announceKey(s: StatusEvent): string {
    return `${s.state}|${s.problem?.code ?? ''}`;
  }

  /** Fetches the interface name for the current local address (only get_state has it). */
  private async refreshInterface(): Promise<void> {
    try {
      const st = await this.backend.invoke<UiState>('get_state');
      if (this.ui && st && 'interface' in st) {
        this.ui.interface = st.interface;
        this.renderDetails();
      }
    } catch {
      // keep the old value
    }
  }

  private onTimeline(entries: TimelineEntry[]): void {
    if (!this.ui) return;
    this.ui.timeline = mergeTimeline(this.ui.timeline, entries);
    this.renderTimeline();
    this.renderChurn();
  }

  private onOtherAccounts(list: OtherAccount[]): void {
    if (!this.ui) return;
    this.ui.other_accounts = list;
    this.renderOtherAccounts();
  }

  /** The look of the softphone of the account the state card shows, if it has one. */
  private ownSoftphone(): SoftphoneLook | null {
    const account = this.ui?.status?.account ?? 'default';
    const own = (this.ui?.softphones ?? []).find((s) => s.account === account);
    return own ? softphoneLook(own) : null;
  }

  private onSoftphones(list: Softphone[], announce = true): void {
    if (!this.ui) return;
    this.ui.softphones = list;
    this.renderSoftphones();
    this.renderStatus();
    const said = new Map<string, string>();
    for (const s of orderSoftphones(list, this.ui.status?.account)) {
      const look = softphoneLook(s);
      const words =
        list.length > 1 ? `Extension ${s.extension}: ${look.announcement}` : look.announcement;
      if (announce && this.softphoneSaid.get(s.account) !== look.announcement) this.announce(words);
      said.set(s.account, look.announcement);
    }
    this.softphoneSaid = said;
  }

  private onTrace(entries: TraceEvent[]): void {
    if (!this.ui) return;
    this.ui.trace = mergeTrace(this.ui.trace, entries);
    this.renderTrace();
  }

  private announce(text: string): void {
    setText(byId('live'), text);
  }

  // ----- rendering -----

  private renderAll(): void {
    this.renderHeader();
    this.renderStatus();
    this.renderTimeline();
    this.renderTrace();
    this.renderChurn();
    this.renderOtherAccounts();
    this.renderSoftphones();
  }

  private renderHeader(): void {
    const hd = headerOf(this.ui?.settings ?? null, this.ui?.status ?? null);
    setText(byId('hdr-ext'), hd.extension === '—' ? 'VICIfast' : `Extension ${hd.extension}`);
    setText(byId('hdr-server'), hd.server === '—' ? '' : hd.server);
  }

  private renderStatus(): void {
    const ui = this.ui;
    if (!ui) return;
    const status = ui.status;
    const card = byId('state-card');
    const iconSlot = byId('state-icon');
    if (!status) {
      const look = ui.settings ? lookOf('idle') : lookOf('idle');
      card.className = `state-card tone-${look.tone}`;
      card.dataset['state'] = 'none';
      iconSlot.replaceChildren(stateIcon(look.icon));
      setText(byId('state-label'), ui.settings ? look.label : 'Not set up');
      setText(byId('state-since'), '');
      setText(
        byId('state-summary'),
        ui.settings ? look.summary : 'Enter your extension in Settings to start.',
      );
      document.title = 'VICIfast';
      this.renderProblem(null);
      this.renderInUse(null);
      this.renderButtons(null);
      this.renderDetails();
      return;
    }
    const view = statusView(status, this.since?.since ?? this.now(), this.now(), ui.interface);
    view.look = withSoftphone(view.look, this.ownSoftphone());
    card.className = `state-card tone-${view.look.tone}`;
    if (card.dataset['state'] !== status.state || card.dataset['icon'] !== view.look.icon) {
      card.dataset['state'] = status.state;
      card.dataset['icon'] = view.look.icon;
      iconSlot.replaceChildren(stateIcon(view.look.icon));
    }
    setText(byId('state-label'), view.look.label);
    setText(byId('state-since'), view.since);
    setText(byId('state-summary'), view.look.summary);
    document.title = `VICIfast — ${view.look.label}`;
    this.renderProblem(status);
    this.renderInUse(status);
    this.renderButtons(status.state);
    this.renderDetails();
  }

  private renderProblem(status: StatusEvent | null): void {
    const panel = byId('problem');
    const p = status?.problem ?? null;
    const key = p ? `${p.code}|${p.message}|${p.action}|${p.detail}` : '';
    if (key === this.problemKey) return;
    this.problemKey = key;
    if (!p) {
      panel.hidden = true;
      return;
    }
    panel.hidden = false;
    panel.dataset['code'] = p.code;
    setText(byId('problem-title'), p.message);
    setText(byId('problem-action'), p.action);
    // The engine's action is the same advice in the CLI's words: show it only where the window
    // has none of its own, so the panel does not say the same thing twice.
    byId('problem-action').hidden = hasGuidance(p.code);
    const g = guidanceFor(p.code);
    setText(byId('problem-guidance'), g.text);
    const btn = byId<HTMLButtonElement>('problem-button');
    if (g.button) {
      btn.hidden = false;
      setText(btn, g.button.label);
      btn.dataset['target'] = g.button.target;
    } else {
      btn.hidden = true;
      delete btn.dataset['target'];
    }
    setText(byId('problem-code'), p.code);
    setText(byId('problem-detail'), redactSip(p.detail || '(none)'));
    byId<HTMLDetailsElement>('problem-details').open = false;
  }

  /** The choice while another device holds the extension: use this computer, or stop here. */
  private renderInUse(status: StatusEvent | null): void {
    const info = status?.extension_in_use ?? null;
    const panel = byId('in-use');
    panel.hidden = info === null;
    if (!info) return;
    setText(byId('in-use-message'), info.message);
    setText(byId('in-use-note'), info.take_over_note);
  }

  private renderButtons(state: string | null): void {
    const reg = byId<HTMLButtonElement>('btn-register');
    const unreg = byId<HTMLButtonElement>('btn-unregister');
    const configured = !!this.ui?.settings;
    const inUse = !!this.ui?.status?.extension_in_use;
    reg.disabled = !configured || state === 'registering' || (state === 'registered' && !inUse);
    setText(
      reg,
      state === 'retrying' || state === 'failed' || state === 'offline'
        ? 'Register now'
        : 'Register',
    );
    unreg.disabled = !configured || state === null || state === 'unregistered' || state === 'idle';
  }

  private renderDetails(): void {
    const dl = byId('details');
    const ui = this.ui;
    if (!ui?.status) {
      dl.replaceChildren();
      return;
    }
    const view = statusView(ui.status, this.since?.since ?? this.now(), this.now(), ui.interface);
    dl.replaceChildren(
      ...view.rows.map((r) =>
        h('div', { class: 'row', 'data-row': r.key }, h('dt', {}, r.label), h('dd', {}, r.value)),
      ),
    );
  }

  private renderChurn(): void {
    const el = byId('churn');
    const n = this.ui ? networkChurn(this.ui.timeline, this.now()) : null;
    el.hidden = n === null;
    if (n !== null) setText(el, churnText(n));
  }

  /** Accounts added with the CLI: one line each, state in words (and shape), problem if any. */
  private renderOtherAccounts(): void {
    const list = this.ui?.other_accounts ?? [];
    byId('other-accounts').hidden = list.length === 0;
    byId('other-accounts-list').replaceChildren(
      ...list.map((a) => {
        const look = a.state ? lookOf(a.state) : null;
        return h(
          'li',
          {
            class: `other-account tone-${look?.tone ?? 'neutral'}`,
            'data-account': a.account,
            'data-state': a.state ?? 'unknown',
          },
          h(
            'span',
            { class: 'other-account-icon', 'aria-hidden': 'true' },
            look ? stateIcon(look.icon, 'other-account-svg') : null,
          ),
          h(
            'span',
            { class: 'other-account-text' },
            h('strong', {}, `Extension ${a.extension}`),
            ` (${a.server}): ${look?.label ?? 'Starting…'}`,
            a.problem ? h('span', { class: 'other-account-problem' }, ` — ${a.problem}`) : null,
          ),
        );
      }),
    );
  }

  /** Each account's softphone: whether calls ring in it, what to change, where it must point. */
  private renderSoftphones(): void {
    const list = orderSoftphones(this.ui?.softphones ?? [], this.ui?.status?.account);
    byId('softphones').hidden = list.length === 0;
    const many = list.length > 1;
    byId('softphone-list').replaceChildren(
      ...list.map((s) => softphoneCard(softphoneLook(s), many)),
    );
  }

  private renderTimeline(): void {
    const list = byId('timeline');
    const entries = this.ui?.timeline ?? [];
    byId('timeline-empty').hidden = entries.length > 0;
    list.replaceChildren(
      ...entries.map((e) =>
        h(
          'li',
          { class: `tl-item kind-${e.kind.replace(/[^a-z_]/gi, '')}`, 'data-kind': e.kind },
          h('span', { class: 'tl-mark', 'aria-hidden': 'true' }, TIMELINE_MARKS[e.kind] ?? '•'),
          h('time', { datetime: e.at, class: 'tl-time' }, formatClock(e.at)),
          h('span', { class: 'tl-text' }, e.text || e.kind.replace(/_/g, ' ')),
        ),
      ),
    );
  }

  private renderTrace(): void {
    const entries = this.ui?.trace ?? [];
    setText(byId('trace-count'), `(${entries.length})`);
    byId<HTMLButtonElement>('trace-copy').disabled = entries.length === 0;
    byId<HTMLButtonElement>('trace-clear').disabled = entries.length === 0;
    byId('trace-list').replaceChildren(
      ...entries.map((e) =>
        h(
          'li',
          { class: `trace-item dir-${e.direction === 'sent' ? 'sent' : 'received'}` },
          h('p', { class: 'trace-head' }, traceHeading(e)),
          h('pre', { class: 'trace-text' }, traceBody(e)),
        ),
      ),
    );
  }

  /** Once a second: "for …" and the countdown move on the local clock. */
  private tick(): void {
    const ui = this.ui;
    if (!ui?.status || !this.since) return;
    const view = statusView(ui.status, this.since.since, this.now(), ui.interface);
    setText(byId('state-since'), view.since);
    const row = byId('details').querySelector('[data-row="countdown"] dd');
    if (row && view.countdown) setText(row as HTMLElement, view.countdown.value);
    this.renderChurn();
  }

  // ----- views -----

  private showStatusView(focus: boolean): void {
    byId('view-settings').hidden = true;
    byId('view-status').hidden = false;
    // Back from a long form: start at the state and its problem panel, not half-way down.
    window.scrollTo(0, 0);
    if (focus) byId('state-label').focus();
  }

  openSettings(focusField: FieldName | null): void {
    const ui = this.ui;
    const firstRun = !ui?.settings;
    this.fillForm();
    byId('first-run').hidden = !firstRun;
    byId('btn-cancel').hidden = firstRun;
    byId('form-error').hidden = true;
    byId('view-status').hidden = true;
    byId('view-settings').hidden = false;
    if (focusField) {
      const el = byId(`f-${focusField}`);
      el.focus();
      if (el instanceof HTMLInputElement && el.type !== 'checkbox') el.select();
    } else if (firstRun) {
      byId('f-server').focus();
    } else {
      byId('settings-title').focus();
    }
  }

  private fillForm(): void {
    const s = this.ui?.settings ?? null;
    const hasPw = !!this.ui?.has_password;
    const val = (id: string, v: string): void => {
      byId<HTMLInputElement>(`f-${id}`).value = v;
    };
    val('server', s?.server ?? '');
    val('extension', s?.extension ?? '');
    val('auth_user', s?.auth_user ?? '');
    val('domain', s?.domain ?? '');
    byId<HTMLSelectElement>('f-transport').value = s?.transport ?? 'udp';
    val('port', s?.port != null ? String(s.port) : '');
    val('outbound_proxy', s?.outbound_proxy ?? '');
    val('expires', String(s?.expires ?? EXPIRES_DEFAULT));
    byId<HTMLInputElement>('f-start_at_login').checked = s?.start_at_login ?? false;
    val('password', '');
    byId('f-password-hint').hidden = !hasPw;
    byId<HTMLInputElement>('f-password').placeholder = hasPw ? '•••••••• (saved)' : '';
    this.updatePortPlaceholder();
    for (const f of FIELDS) this.setFieldError(f, null);
  }

  private updatePortPlaceholder(): void {
    const t = byId<HTMLSelectElement>('f-transport').value;
    byId<HTMLInputElement>('f-port').placeholder = t === 'tls' ? '5061' : '5060';
  }

  private readForm(): SettingsInput {
    const v = (id: string): string => byId<HTMLInputElement>(`f-${id}`).value;
    return {
      server: v('server'),
      extension: v('extension'),
      auth_user: v('auth_user'),
      domain: v('domain'),
      transport: byId<HTMLSelectElement>('f-transport').value,
      port: v('port'),
      outbound_proxy: v('outbound_proxy'),
      expires: v('expires'),
      start_at_login: byId<HTMLInputElement>('f-start_at_login').checked,
      password: v('password'),
    };
  }

  private setFieldError(field: FieldName, message: string | null): void {
    const input = byId(`f-${field}`);
    const err = byId(`f-${field}-error`);
    if (message) {
      err.textContent = message;
      err.hidden = false;
      input.setAttribute('aria-invalid', 'true');
    } else {
      err.textContent = '';
      err.hidden = true;
      input.removeAttribute('aria-invalid');
    }
  }

  private async submit(): Promise<void> {
    const formError = byId('form-error');
    formError.hidden = true;
    for (const f of FIELDS) this.setFieldError(f, null);
    const result = validateSettings(this.readForm(), !!this.ui?.has_password);
    const invalid = FIELDS.filter((f) => result.errors[f]);
    if (invalid.length > 0 || !result.settings) {
      for (const f of invalid) this.setFieldError(f, result.errors[f] ?? null);
      byId(`f-${invalid[0] ?? 'server'}`).focus();
      return;
    }
    const save = byId<HTMLButtonElement>('btn-save');
    save.disabled = true;
    setText(save, 'Saving…');
    try {
      const state = await this.backend.invoke<UiState>('save_settings', {
        settings: result.settings,
        password: result.password ?? null,
      });
      byId<HTMLInputElement>('f-password').value = '';
      if (state && typeof state === 'object' && 'settings' in state) {
        this.mergeSaved(state);
      }
      this.showStatusView(true);
      setText(byId('action-message'), 'Settings saved.');
    } catch (e) {
      const info = errorInfo(e);
      const field = fieldOfBackendError(info.field);
      if (field) {
        this.setFieldError(field, info.message);
        byId(`f-${field}`).focus();
      } else {
        formError.textContent = `Could not save: ${info.message}`;
        formError.hidden = false;
        formError.focus();
      }
    } finally {
      save.disabled = false;
      setText(save, 'Save');
    }
  }

  private mergeSaved(state: UiState): void {
    const ui = this.ui;
    if (!ui) {
      this.load(state);
      return;
    }
    ui.settings = state.settings;
    ui.has_password = state.has_password;
    ui.interface = state.interface;
    ui.timeline = mergeTimeline(ui.timeline, state.timeline ?? []);
    this.renderHeader();
    if (state.status) this.onStatus(state.status);
    else this.renderStatus();
    this.renderTimeline();
  }

  private async command(
    cmd: 'register' | 'unregister' | 'take_over' | 'clear_trace',
    done: string,
    failed: string,
  ): Promise<void> {
    const msg = byId(cmd === 'clear_trace' ? 'trace-message' : 'action-message');
    setText(msg, '');
    try {
      await this.backend.invoke<void>(cmd);
      setText(msg, done);
      if (cmd === 'clear_trace' && this.ui) {
        this.ui.trace = [];
        this.renderTrace();
      }
    } catch (e) {
      setText(msg, `${failed}: ${errorInfo(e).message}`);
    }
  }

  private async guidanceAction(target: GuidanceTarget): Promise<void> {
    switch (target) {
      case 'retry':
        await this.command('register', 'Trying again…', 'Could not try again');
        return;
      case 'copy_details': {
        const p = this.ui?.status?.problem;
        if (!p) return;
        const ok = await copyText(
          `${p.message}\n${p.action}\nCode: ${p.code}\nDetail: ${redactSip(p.detail)}`,
        );
        setText(byId('action-message'), ok ? 'Technical details copied.' : 'Could not copy.');
        return;
      }
      default:
        this.openSettings(target);
    }
  }

  private wire(): void {
    byId('btn-register').addEventListener('click', () => {
      void this.command('register', 'Registering…', 'Could not register');
    });
    byId('btn-unregister').addEventListener('click', () => {
      void this.command('unregister', 'Unregistering…', 'Could not unregister');
    });
    byId('btn-settings').addEventListener('click', () => this.openSettings(null));
    byId('in-use-take-over').addEventListener('click', () => {
      const note = this.ui?.status?.extension_in_use?.take_over_note ?? '';
      void this.command(
        'take_over',
        `Registering on this computer… ${note}`.trim(),
        'Could not register here',
      );
    });
    byId('in-use-stop').addEventListener('click', () => {
      void this.command('unregister', 'Unregistering…', 'Could not unregister');
    });
    byId('btn-cancel').addEventListener('click', () => this.showStatusView(true));
    byId('problem-button').addEventListener('click', (ev) => {
      const t = (ev.currentTarget as HTMLElement).dataset['target'] as GuidanceTarget | undefined;
      if (t) void this.guidanceAction(t);
    });
    byId('settings-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.submit();
    });
    byId('settings-form').addEventListener('input', (ev) => {
      const name = (ev.target as HTMLInputElement).name as FieldName;
      if (FIELDS.includes(name)) this.setFieldError(name, null);
    });
    byId('f-transport').addEventListener('change', () => this.updatePortPlaceholder());
    byId('view-settings').addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && this.ui?.settings) this.showStatusView(true);
    });
    byId('trace-copy').addEventListener('click', () => {
      void (async () => {
        const entries = this.ui?.trace ?? [];
        const ok = await copyText(traceToText(entries));
        setText(
          byId('trace-message'),
          ok
            ? `Copied ${entries.length} message${entries.length === 1 ? '' : 's'}.`
            : 'Could not copy.',
        );
      })();
    });
    byId('softphone-list').addEventListener('click', (ev) => {
      const button = (ev.target as HTMLElement).closest<HTMLElement>('button[data-copy]');
      const text = button?.dataset['copy'];
      if (!text) return;
      void (async () => {
        const ok = await copyText(text);
        setText(
          byId('action-message'),
          ok ? `Copied ${text}: enter it as the softphone's outbound proxy.` : 'Could not copy.',
        );
      })();
    });
    byId('trace-clear').addEventListener('click', () => {
      void this.command('clear_trace', 'Cleared.', 'Could not clear');
    });
  }
}

/** One softphone's card; `many` names the extension when there are several. */
function softphoneCard(look: SoftphoneLook, many: boolean): HTMLLIElement {
  const p = look.problem;
  return h(
    'li',
    {
      class: `softphone tone-${look.tone}`,
      'data-account': look.account,
      'data-state': look.state,
      'data-problem': p?.code,
    },
    h(
      'span',
      { class: 'softphone-icon', 'aria-hidden': 'true' },
      stateIcon(look.icon, 'softphone-svg'),
    ),
    h(
      'div',
      { class: 'softphone-text' },
      many ? h('p', { class: 'softphone-extension' }, `Extension ${look.extension}`) : null,
      h('h2', { class: 'softphone-headline' }, look.headline),
      h('p', { class: 'softphone-summary' }, look.summary),
      look.action ? h('p', { class: 'softphone-action' }, look.action) : null,
      h(
        'dl',
        { class: 'softphone-rows' },
        ...look.rows.map((r) =>
          h(
            'div',
            { class: 'row', 'data-row': r.key },
            h('dt', {}, r.label),
            h(
              'dd',
              {},
              h('span', { class: 'row-value' }, r.value),
              r.copy
                ? h(
                    'button',
                    {
                      type: 'button',
                      class: 'btn btn-small',
                      'data-copy': r.copy,
                      'aria-label': `Copy ${r.copy}`,
                    },
                    'Copy',
                  )
                : null,
            ),
          ),
        ),
      ),
      p
        ? h(
            'details',
            { class: 'tech-details' },
            h('summary', {}, 'Technical details'),
            h('p', { class: 'tech-code' }, 'Code: ', h('code', {}, p.code)),
            h('pre', {}, redactSip(p.detail || '(none)')),
          )
        : null,
    ),
  );
}

import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import { App, type Backend } from './app';

const backend: Backend = {
  invoke: <T>(cmd: string, args?: Record<string, unknown>) => invoke<T>(cmd, args),
  listen: async <T>(event: string, handler: (payload: T) => void) =>
    listen<T>(event, (e) => handler(e.payload)),
};

void new App(backend).start();

// A WebSocket that reconnects with exponential backoff (0.5 s doubling to
// 10 s) until the caller says the stream is finished. The URL is computed
// at each (re)connect, so a run's stream resumes from the last seq seen.
import { useEffect, useRef, useState } from "react";
import { wsUrl } from "../api/client";

export type SocketState = "connecting" | "open" | "closed" | "done";

export type LiveSocketOptions = {
  /** The API path to connect to, read at each (re)connect; `null` pauses. */
  path: () => string | null;
  /** Handles one parsed text frame; returns `true` when the stream is over (no reconnect). */
  onMessage: (message: unknown) => boolean | void;
  /** Called after a reconnect opens, so the caller can refetch what it may have missed. */
  onReconnect?: () => void;
  enabled: boolean;
};

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;

export function useLiveSocket(options: LiveSocketOptions): SocketState {
  const latest = useRef(options);
  latest.current = options;
  const [state, setState] = useState<SocketState>("connecting");

  useEffect(() => {
    if (!options.enabled) {
      setState("done");
      return;
    }
    let socket: WebSocket | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let delay = MIN_DELAY_MS;
    let stopped = false;
    let finished = false;
    let opens = 0;

    const connect = () => {
      const path = latest.current.path();
      if (stopped || path === null) return;
      setState("connecting");
      const ws = new WebSocket(wsUrl(path));
      socket = ws;
      ws.onopen = () => {
        delay = MIN_DELAY_MS;
        setState("open");
        if (opens++ > 0) latest.current.onReconnect?.();
      };
      ws.onmessage = (ev) => {
        if (typeof ev.data !== "string") return;
        let message: unknown;
        try {
          message = JSON.parse(ev.data);
        } catch {
          return;
        }
        if (latest.current.onMessage(message) === true) finished = true;
      };
      ws.onclose = () => {
        socket = null;
        if (stopped) return;
        if (finished) {
          setState("done");
          return;
        }
        setState("closed");
        timer = setTimeout(connect, delay);
        delay = Math.min(delay * 2, MAX_DELAY_MS);
      };
    };
    connect();
    return () => {
      stopped = true;
      clearTimeout(timer);
      if (socket) {
        // Closing a socket that is still connecting logs a browser warning;
        // let it open and close it then.
        if (socket.readyState === WebSocket.CONNECTING) {
          const s = socket;
          s.onopen = () => s.close(1000);
          s.onmessage = null;
          s.onclose = null;
        } else {
          socket.onclose = null;
          socket.close(1000);
        }
      }
    };
  }, [options.enabled]);

  return state;
}

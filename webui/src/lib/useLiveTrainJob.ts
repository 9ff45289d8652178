import { useEffect, useReducer } from "react";
import { ApiError } from "../api/client";
import { readEvents } from "../api/sse";
import { initialLive, liveReducer, type LiveState, type Snapshot } from "./liveJob";

const RETRY_MS = 3000;

/** A train job kept current by admin's event stream; reconnects after a dropped connection. */
export function useLiveTrainJob(app: string, version: number): LiveState {
  const [state, dispatch] = useReducer(liveReducer, initialLive);
  useEffect(() => {
    const controller = new AbortController();
    let ended = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    const path = `/train_jobs/${encodeURIComponent(app)}/${version}/events`;
    const connect = () => {
      dispatch({ type: "reconnect" });
      readEvents(path, (event) => {
        if (event.event === "snapshot") dispatch({ type: "snapshot", snapshot: JSON.parse(event.data) as Snapshot });
        else if (event.event === "end") {
          ended = true;
          dispatch({ type: "end" });
        }
      }, controller.signal)
        .then(() => {
          if (!ended && !controller.signal.aborted) retry = setTimeout(connect, RETRY_MS);
        })
        .catch((error: unknown) => {
          if (controller.signal.aborted) return;
          const permanent = error instanceof ApiError && error.status >= 400 && error.status < 500;
          dispatch({ type: "error", error, retrying: !permanent });
          if (!permanent) retry = setTimeout(connect, RETRY_MS);
        });
    };
    connect();
    return () => {
      controller.abort();
      clearTimeout(retry);
    };
  }, [app, version]);
  return state;
}

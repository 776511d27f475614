// Change notices from the server (Server-Sent Events): `onChange(metricIds)` runs when an
// acknowledged request wrote one of the project's metrics. The stream is closed while the
// tab is hidden and reopened (with one refresh) when it is shown again. A stream the server
// refuses (an ended session, a revoked share link) is not retried by the browser: one last
// refresh then shows the server's reason in each widget.

export function listen(projectId, onChange) {
  return listenAt(`/api/v1/projects/${encodeURIComponent(projectId)}/events`, onChange);
}

/** As `listen`, on any change stream (a share link's). Returns the function that stops it. */
export function listenAt(url, onChange) {
  let source = null;
  const open = () => {
    if (source) return;
    const s = new EventSource(url);
    source = s;
    s.addEventListener("error", () => {
      if (s.readyState !== EventSource.CLOSED || source !== s) return;
      source = null;
      onChange(null);
    });
    s.addEventListener("change", (e) => {
      try {
        onChange(new Set(JSON.parse(e.data).metricIds));
      } catch (err) {
        console.warn("bad change event", err);
      }
    });
  };
  const close = () => {
    if (source) source.close();
    source = null;
  };
  const onVisibility = () => {
    if (document.hidden) close();
    else {
      open();
      onChange(null); // null: anything may have changed while hidden
    }
  };
  document.addEventListener("visibilitychange", onVisibility);
  if (!document.hidden) open();
  return () => {
    document.removeEventListener("visibilitychange", onVisibility);
    close();
  };
}

// Change notices from the server (Server-Sent Events): `onChange(metricIds)` runs when an
// acknowledged request wrote one of the project's metrics. The stream is closed while the
// tab is hidden and reopened (with one refresh) when it is shown again.

export function listen(projectId, onChange) {
  let source = null;
  const open = () => {
    if (source) return;
    source = new EventSource(`/api/v1/projects/${encodeURIComponent(projectId)}/events`);
    source.addEventListener("change", (e) => {
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

// Which view is shown, kept in the address's hash (#cluster, #data, #streams/<name>, #groups/<name>)
// so a view can be linked to, reloaded and opened directly by the browser tests.

/** The views of the page. */
export const views = ["cluster", "data", "streams", "groups"] as const;
/** One view. */
export type View = (typeof views)[number];

function parse(hash: string): { view: View; stream: string } {
  const [head = "", ...rest] = hash.replace(/^#/, "").split("/");
  const view = (views as readonly string[]).includes(head) ? (head as View) : "cluster";
  return { view, stream: decodeURIComponent(rest.join("/")) };
}

/** The current view and the stream it is about (streams and groups), from the address. */
export const nav = $state(parse(location.hash));

window.addEventListener("hashchange", () => {
  Object.assign(nav, parse(location.hash));
});

/** Shows `view` (about `stream`, for streams and groups). */
export function go(view: View, stream = ""): void {
  location.hash = stream === "" ? view : `${view}/${encodeURIComponent(stream)}`;
  Object.assign(nav, { view, stream });
}

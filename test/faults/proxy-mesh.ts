// One fault proxy per ordered pair of nodes, and the cuts the nemesis makes with them: shared by
// the Cairn and etcd clusters, which differ only in how their nodes are pointed at the proxies.
import { FaultProxy, type PeerAddress } from "../../src/transport/index.js";
import type { Link } from "./schedule.js";

/** The proxies of a cluster of `size` nodes; the one for messages from i to j sits at `i * size + j`. */
export class ProxyMesh {
  readonly #size: number;
  readonly #proxies: (FaultProxy | undefined)[];

  private constructor(size: number, proxies: (FaultProxy | undefined)[]) {
    this.#size = size;
    this.#proxies = proxies;
  }

  /** Starts a proxy for every ordered pair: `route(from, to)` says where it listens and whom it relays to. */
  static async start(
    size: number,
    route: (from: number, to: number) => { readonly listen: PeerAddress; readonly target: PeerAddress },
  ): Promise<ProxyMesh> {
    const proxies: (FaultProxy | undefined)[] = [];
    for (let from = 0; from < size; from++) {
      for (let to = 0; to < size; to++) {
        if (from === to) {
          proxies.push(undefined);
          continue;
        }
        const proxy = new FaultProxy(route(from, to));
        await proxy.start();
        proxies.push(proxy);
      }
    }
    return new ProxyMesh(size, proxies);
  }

  /** Where the proxy for messages from `from` to `to` listens. */
  address(from: number, to: number): PeerAddress | undefined {
    return this.#proxies[from * this.#size + to]?.address;
  }

  /** Cuts the links: refused and severed, or (`blackhole`) swallowed on open connections. */
  cut(links: readonly Link[], blackhole: boolean): void {
    for (const { from, to } of links) {
      const proxy = this.#proxies[from * this.#size + to];
      if (proxy === undefined) continue;
      if (blackhole) proxy.blackhole("both");
      else proxy.drop();
    }
  }

  /** Restores every link. */
  heal(): void {
    for (const proxy of this.#proxies) proxy?.heal();
  }

  /** Stops every proxy. */
  async close(): Promise<void> {
    for (const proxy of this.#proxies) await proxy?.close();
  }
}

/** The node that claims to lead with the highest term, if any claims it. */
export function highestClaim(
  claims: readonly ({ readonly index: number; readonly term: number } | undefined)[],
): number | undefined {
  let best: { readonly index: number; readonly term: number } | undefined;
  for (const claim of claims)
    if (claim !== undefined && (best === undefined || claim.term > best.term)) best = claim;
  return best?.index;
}

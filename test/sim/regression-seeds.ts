// Seeds that once failed (and the fix that made them pass), replayed by `npm test` at their level.
// Every failing seed the simulator finds joins this list once its bug is fixed.
import type { SimLevel } from "./sim-options.js";

/** One remembered seed: where it failed and why. */
export interface RegressionSeed {
  readonly seed: number;
  readonly level: SimLevel;
  readonly why: string;
}

/** The regression list. */
export const regressionSeeds: readonly RegressionSeed[] = [
  {
    seed: 38,
    level: 1,
    why: "raft core: a member restarted with a wiped disk took a snapshot of the leader's whole log on an idle cluster and never got an append with the leader's commit index, so it withheld its vote for good; the leader now sends one when the commit it last sent is behind",
  },
  {
    seed: 411,
    level: 1,
    why: "raft core: as seed 38, but the leader believed the commit had reached the wiped member (an append it rejected carried it); a rejection or a snapshot now resets what the leader counts as sent",
  },
  {
    seed: 574,
    level: 1,
    why: "raft core: as seeds 38 and 411, but the append that carried the final commit was lost on the network while the leader counted it as sent; the leader now sends an append after every 10 heartbeat responses without one",
  },
  {
    seed: 82,
    level: 1,
    why: "harness: a lagging follower failed convergence at the end of a fixed liveness phase; the cluster now gets a settle period",
  },
  {
    seed: 2,
    level: 2,
    why: "harness: with 10 ms ticks a hard-state save (several simulated disk operations) outlasted the election timeout and no election finished; level 2 ticks are 25 ms",
  },
  {
    seed: 4,
    level: 2,
    why: "workload: two attempts of one retried get were counted as an idempotency violation; reads are now exempt",
  },
  {
    seed: 352697416,
    level: 2,
    why: "raft core: a removed node being re-added restarted its election clock although it may not campaign, so it stayed in lease of a dead leader and refused the votes its re-adding leader needed; no leader was ever elected",
  },
  {
    seed: 358800238,
    level: 2,
    why: "harness: convergence compared the state store's own applied index, which lags while its commits are in flight; only replicated state is compared now",
  },
  {
    seed: 502340,
    level: 1,
    why: "raft core: a follower that may not campaign kept restarting its election clock, kept a dead leader's lease and refused the votes the last possible majority needed (fixed with seed 352697416's bug)",
  },
  {
    seed: 1014,
    level: 2,
    why: "storage: overlapping snapshot writers (a capture beside a received snapshot, or one snapshot streamed twice) shared one temp file and pruned the same files; ENOENT stopped the snapshot store for good",
  },
  {
    seed: 2014,
    level: 2,
    why: "storage: overlapping snapshot writers (a capture beside a received snapshot, or one snapshot streamed twice) shared one temp file and pruned the same files; ENOENT stopped the snapshot store for good",
  },
  {
    seed: 2045,
    level: 2,
    why: "storage: overlapping snapshot writers (a capture beside a received snapshot, or one snapshot streamed twice) shared one temp file and pruned the same files; ENOENT stopped the snapshot store for good",
  },
  {
    seed: 3039,
    level: 2,
    why: "storage: overlapping snapshot writers (a capture beside a received snapshot, or one snapshot streamed twice) shared one temp file and pruned the same files; ENOENT stopped the snapshot store for good",
  },
  {
    seed: 3045,
    level: 2,
    why: "storage: overlapping snapshot writers (a capture beside a received snapshot, or one snapshot streamed twice) shared one temp file and pruned the same files; ENOENT stopped the snapshot store for good",
  },
  {
    seed: 3047,
    level: 2,
    why: "storage: overlapping snapshot writers (a capture beside a received snapshot, or one snapshot streamed twice) shared one temp file and pruned the same files; ENOENT stopped the snapshot store for good",
  },
  {
    seed: 1001115,
    level: 2,
    why: "harness: with slow links and disks no election finished for seconds, the stream setup never got an answer, and the stream checks judged streams that were never created (also 1000464, 1001397, 1001860); they now judge only a started workload",
  },
  {
    seed: 1000757,
    level: 2,
    why: "harness: a node stopped by a fatal error kept its last role and was taken for the leader (also 1000932); such a node never counts as leader now (its fatal stop was the snapshot-store bug, fixed)",
  },
  {
    seed: 1017838,
    level: 1,
    why: "raft core: a leader cut off right after appending its own removal never campaigned again (its latest configuration left it out) while the committed one still needed its vote; a node now campaigns until its removal commits",
  },
  {
    seed: 1001003,
    level: 2,
    why: "harness: an append attempt still in flight when the run ended had no record, so a reader's sighting of it was called a phantom; open appends and acks now count as outcomes unknown",
  },
  {
    seed: 3000106,
    level: 2,
    why: "storage (issue 12's power losses): two snapshots received but not installed before a power loss made the snapshot store's retention delete the one the log was compacted to, and the node could not start (ERR_SNAPSHOT_CORRUPT; also 3000181); the load now installs the newest snapshot instead",
  },
  {
    seed: 3000181,
    level: 2,
    why: "storage: as 3000106, a received snapshot not installed pruned the compaction point's snapshot (node 4 could not start)",
  },
  {
    seed: 3,
    level: 2,
    why: "runtime (issue 12, chunked snapshot streaming): a follower stored the transport's pieces as the snapshot file's chunks, so a state chunk split in transit failed to install ('pair cut') and stopped the node (also 7, 14, 17, 18 and more of the first 30); the stream now carries chunk lengths. The same seed had 17 snapshots refused as 'too many transfers' by finished transfers kept for late resumes; they no longer count",
  },
  {
    seed: 18,
    level: 2,
    why: "runtime: as 3, a split state chunk stopped two followers; this seed also resumes transfers after broken connections",
  },
  {
    seed: 30000585,
    level: 2,
    why: "harness: 512-byte snapshot chunks with a window of 2 streamed at 5-10 KiB/s; a re-added follower chasing compactions was still receiving its fourth snapshot when the run was judged; windows now hold at least 4 KiB",
  },
  {
    seed: 40001287,
    level: 2,
    why: "runtime: a follower's snapshot commit pruned the snapshot it was installing between the verify pass and the read, and the ENOENT stopped it; an install now pins its file",
  },
  {
    seed: 540302435,
    level: 2,
    why: "membership (found once housekeeping ran in the simulator): node 2 was down while node 1 was added and came to lead; node 2's log did not hold node 1's joining, so its transport had no address for node 1, it could never answer, and the leader probed it forever (also 540302089, 540302394). A node now keeps a link to a node that announced where it is, unless it knows that node was removed",
  },
];

// `cairn stream create|update|ls|info|send|read|tail` and `cairn group create|update|fetch|ack|info`: the
// streams and consumer groups from the command line, through the client library (which retries on
// another node and makes writes safe to retry).
import type { Command } from "commander";
import {
  type BatchMessage,
  CairnClient,
  type GroupOptions,
  type StreamMessageItem,
  type StreamOptions,
} from "../client/index.js";
import { ConfigError } from "./node-config.js";

/** What the stream commands need from the program that hosts them. */
export interface StreamCommandsContext {
  /** The endpoints to use for a command's --endpoints flag value. */
  /** The endpoints (and token) a client command talks to. */
  readonly clientOptions: (flag: string | undefined) => { endpoints: string[]; token?: string };
  /** Prints a line (or a value as JSON). */
  readonly print: (value: unknown) => void;
  /** Prints a diagnostic line to stderr. */
  readonly warn: (line: string) => void;
  /** The lines of standard input (`stream send` without a payload sends one message per line). */
  readonly inputLines: () => AsyncIterable<string>;
  /** Marks the command as failed (a nonzero exit) once it has done what it could. */
  readonly setFailed: () => void;
}

/** Payload bytes one batch of `stream send --count` or stdin carries at most (the node's default bound is 1 MiB). */
const sendBatchBytesMax = 512 * 1024;

/**
 * Groups messages into batches of at most `count` messages and about {@link sendBatchBytesMax}
 * payload bytes (a batch always holds at least one).
 */
async function* batchesOf(
  messages: AsyncIterable<BatchMessage> | Iterable<BatchMessage>,
  count: number,
): AsyncIterable<BatchMessage[]> {
  let batch: BatchMessage[] = [];
  let bytes = 0;
  for await (const message of messages) {
    const size =
      typeof message.payload === "string" ? Buffer.byteLength(message.payload) : message.payload.length;
    if (batch.length > 0 && (batch.length >= count || bytes + size > sendBatchBytesMax)) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(message);
    bytes += size;
  }
  if (batch.length > 0) yield batch;
}

function integer(name: string): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value))
      throw new ConfigError(name, `expected a non-negative integer, got ${JSON.stringify(value)}`);
    return Number(value);
  };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function headersOf(pairs: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new ConfigError("header", `expected name=value, got ${JSON.stringify(pair)}`);
    headers[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return headers;
}

function startOf(value: string): NonNullable<GroupOptions["startAt"]> {
  if (value === "first" || value === "last" || value === "new") return value;
  const match = /^(seq|time):(\d+)$/.exec(value);
  if (match === null) throw new ConfigError("start", "expected first, last, new, seq:N or time:MS");
  return match[1] === "seq" ? { seq: Number(match[2]) } : { timeMs: Number(match[2]) };
}

/** The stream settings flags, as commander parses them. */
interface SettingsFlags {
  readonly maxMessages?: number;
  readonly maxBytes?: number;
  readonly maxAgeMs?: number;
  readonly discard?: string;
  readonly messageBytesMax?: number;
  readonly dedupeWindowMs?: number;
}

/** Adds the stream settings flags shared by `stream create` and `stream update`. */
function withSettings(command: Command): Command {
  return command
    .option("--max-messages <n>", "keep at most this many messages (0: no limit)", integer("max-messages"))
    .option("--max-bytes <n>", "keep at most this many bytes (0: no limit)", integer("max-bytes"))
    .option("--max-age-ms <ms>", "drop messages older than this (0: no limit)", integer("max-age-ms"))
    .option("--discard <policy>", "when full: old (drop oldest) or new (refuse)")
    .option("--message-bytes-max <n>", "largest message accepted", integer("message-bytes-max"))
    .option("--dedupe-window-ms <ms>", "how long message ids are remembered", integer("dedupe-window-ms"));
}

/** The settings the flags give, with the discard policy checked. */
function settingsOf(flags: SettingsFlags): StreamOptions {
  const { discard, ...limits } = flags;
  if (discard !== undefined && discard !== "old" && discard !== "new") {
    throw new ConfigError("discard", "expected old or new");
  }
  return { ...limits, ...(discard !== undefined ? { discard } : {}) };
}

function line(m: StreamMessageItem): string {
  const deliveries = m.deliveries !== undefined ? `\t(delivery ${m.deliveries})` : "";
  return `${m.seq}\t${m.id}\t${m.payload}${deliveries}`;
}

/** Group settings as parsed from the command line. */
interface GroupSettingsFlags {
  readonly ackWaitMs?: number;
  readonly maxDeliveries?: number;
  readonly maxAckPending?: number;
}

/** Adds the stream and group commands to `program`. */
export function registerStreamCommands(program: Command, context: StreamCommandsContext): void {
  const { print, warn, inputLines, setFailed } = context;
  const client = (endpoints: string | undefined) => new CairnClient(context.clientOptions(endpoints));
  const withEndpoints = (command: Command) =>
    command.option("--endpoints <urls>", "comma-separated node URLs");

  const stream = program.command("stream").description("create, inspect, write, read and follow streams");
  withSettings(
    withEndpoints(
      stream.command("create <name>").description("create a stream (no-op if it exists with these settings)"),
    ),
  ).action(async (name: string, o: SettingsFlags & { endpoints?: string }) => {
    const { endpoints, ...flags } = o;
    print(await client(endpoints).createStream(name, settingsOf(flags)));
  });
  withSettings(
    withEndpoints(
      stream
        .command("update <name>")
        .description("change some of a stream's settings; a lowered limit drops the oldest messages over it"),
    ),
  ).action(async (name: string, o: SettingsFlags & { endpoints?: string }) => {
    const { endpoints, ...flags } = o;
    const changes = settingsOf(flags);
    if (Object.keys(changes).length === 0) {
      throw new ConfigError("settings", "give at least one setting to change, e.g. --max-messages 1000");
    }
    print(await client(endpoints).updateStream(name, changes));
  });
  withEndpoints(stream.command("ls").description("list streams")).action(
    async (o: { endpoints?: string }) => {
      for (const s of await client(o.endpoints).listStreams()) {
        print(
          `${s.name}\tmessages ${s.messages}\tseq ${s.firstSeq}..${s.lastSeq}\tbytes ${s.bytes}\tgroups ${s.groups.length}`,
        );
      }
    },
  );
  withEndpoints(
    stream.command("info <name>").description("show a stream's settings, sequences and groups"),
  ).action(async (name: string, o: { endpoints?: string }) => {
    const info = await client(o.endpoints).streamInfo(name);
    if (info === undefined) throw new ConfigError("name", `stream ${name} does not exist`);
    print(info);
  });
  withEndpoints(
    stream
      .command("send <name> [payload]")
      .description(
        "append a message; with --count, that many copies; without a payload, one message per line of stdin (both in batches)",
      ),
  )
    .option(
      "--id <id>",
      "message id: a retry with the same id is stored once (<id>-<n> for the n-th of several)",
    )
    .option("--key <key>", "message key")
    .option("--header <name=value>", "a header (repeatable)", collect, [])
    .option(
      "--expected-last-seq <n>",
      "append only if the stream's last sequence is n",
      integer("expected-last-seq"),
    )
    .option("--count <n>", "send the payload this many times, in batches", integer("count"))
    .option("--batch <n>", "messages per batch (one request, one replicated write)", integer("batch"), 500)
    .option("--atomic", "each batch all or nothing")
    .action(
      async (
        name: string,
        payload: string | undefined,
        o: {
          endpoints?: string;
          id?: string;
          key?: string;
          header: string[];
          expectedLastSeq?: number;
          count?: number;
          batch: number;
          atomic?: boolean;
        },
      ) => {
        const headers = headersOf(o.header);
        if (payload !== undefined && o.count === undefined) {
          print(
            await client(o.endpoints).append(name, payload, {
              headers,
              ...(o.id !== undefined ? { id: o.id } : {}),
              ...(o.key !== undefined ? { key: o.key } : {}),
              ...(o.expectedLastSeq !== undefined ? { expectedLastSeq: o.expectedLastSeq } : {}),
            }),
          );
          return;
        }
        if (o.expectedLastSeq !== undefined)
          throw new ConfigError("expected-last-seq", "applies to a single message, not to --count or stdin");
        if (o.batch < 1) throw new ConfigError("batch", "expected at least 1");
        const messageOf = (text: string, n: number): BatchMessage => ({
          payload: text,
          headers,
          ...(o.id !== undefined ? { id: `${o.id}-${n}` } : {}),
          ...(o.key !== undefined ? { key: o.key } : {}),
        });
        async function* messages(): AsyncIterable<BatchMessage> {
          let n = 0;
          if (payload !== undefined) {
            for (let i = 0; i < (o.count ?? 0); i++) yield messageOf(payload, ++n);
            return;
          }
          for await (const line of inputLines()) yield messageOf(line, ++n);
        }
        const summary = { sent: 0, appended: 0, duplicates: 0, failed: 0, firstSeq: 0, lastSeq: 0 };
        const c = client(o.endpoints);
        for await (const batch of batchesOf(messages(), o.batch)) {
          const { results } = await c.appendBatch(name, batch, o.atomic === true ? { atomic: true } : {});
          results.forEach((result, i) => {
            const n = summary.sent + i + 1;
            if (!result.ok) {
              summary.failed++;
              warn(`message ${n}: ${result.error.code} ${result.error.message}`);
              return;
            }
            if (result.duplicate) summary.duplicates++;
            else summary.appended++;
            if (summary.firstSeq === 0) summary.firstSeq = result.seq;
            summary.lastSeq = Math.max(summary.lastSeq, result.seq);
          });
          summary.sent += batch.length;
        }
        print(summary);
        if (summary.failed > 0) setFailed();
      },
    );
  withEndpoints(stream.command("read <name>").description("print messages: seq, id, payload"))
    .option("--from <seq>", "first sequence", integer("from"))
    .option("--limit <n>", "messages at most", integer("limit"), 100)
    .option("--wait-ms <ms>", "wait this long for a message if there is none", integer("wait-ms"))
    .option("--json", "print whole messages as JSON")
    .action(
      async (
        name: string,
        o: { endpoints?: string; from?: number; limit: number; waitMs?: number; json?: boolean },
      ) => {
        const page = await client(o.endpoints).read(name, {
          limit: o.limit,
          ...(o.from !== undefined ? { from: o.from } : {}),
          ...(o.waitMs !== undefined ? { waitMs: o.waitMs } : {}),
        });
        for (const m of page.messages) print(o.json ? JSON.stringify(m) : line(m));
      },
    );
  withEndpoints(stream.command("tail <name>").description("follow a stream live (Ctrl-C stops)"))
    .option("--from <seq>", "start at this sequence (default: new messages only)", integer("from"))
    .option("--json", "print whole messages as JSON")
    .action(async (name: string, o: { endpoints?: string; from?: number; json?: boolean }) => {
      const controller = new AbortController();
      process.once("SIGINT", () => controller.abort());
      const messages = client(o.endpoints).tail(name, {
        ...(o.from !== undefined ? { from: o.from } : {}),
        signal: controller.signal,
        onConnection: (event) =>
          warn(
            event.kind === "lost"
              ? `cairn: lost ${event.endpoint} (${event.reason}); reconnecting to another node...`
              : `cairn: reconnected to ${event.endpoint}; resuming at sequence ${event.from}`,
          ),
      });
      for await (const m of messages) print(o.json ? JSON.stringify(m) : line(m));
    });

  const group = program.command("group").description("consumer groups: create, update, fetch, ack, info");
  /** The group settings both create and update take. */
  const withGroupSettings = (command: Command) =>
    command
      .option("--ack-wait-ms <ms>", "redeliver if not acknowledged within this", integer("ack-wait-ms"))
      .option(
        "--max-deliveries <n>",
        "dead-letter after this many deliveries (0: never)",
        integer("max-deliveries"),
      )
      .option("--max-ack-pending <n>", "messages in flight at most", integer("max-ack-pending"));
  const groupSettingsOf = (o: GroupSettingsFlags) => ({
    ...(o.ackWaitMs !== undefined ? { ackWaitMs: o.ackWaitMs } : {}),
    ...(o.maxDeliveries !== undefined ? { maxDeliveries: o.maxDeliveries } : {}),
    ...(o.maxAckPending !== undefined ? { maxAckPending: o.maxAckPending } : {}),
  });
  withGroupSettings(
    withEndpoints(group.command("create <stream> <group>").description("create a consumer group")),
  )
    .option("--start <at>", "first, last, new, seq:N or time:MS", "first")
    .option("--dead-letter-stream <name>", "where dead letters go (default <stream>.<group>.dlq)")
    .action(
      async (
        streamName: string,
        groupName: string,
        o: GroupSettingsFlags & { endpoints?: string; start: string; deadLetterStream?: string },
      ) => {
        print(
          await client(o.endpoints).createGroup(streamName, groupName, {
            startAt: startOf(o.start),
            ...groupSettingsOf(o),
            ...(o.deadLetterStream !== undefined ? { deadLetterStream: o.deadLetterStream } : {}),
          }),
        );
      },
    );
  withGroupSettings(
    withEndpoints(
      group
        .command("update <stream> <group>")
        .description("change a group's ack wait, delivery limit or in-flight limit"),
    ),
  ).action(async (streamName: string, groupName: string, o: GroupSettingsFlags & { endpoints?: string }) => {
    const changes = groupSettingsOf(o);
    if (Object.keys(changes).length === 0) {
      throw new ConfigError("settings", "give at least one setting to change, e.g. --ack-wait-ms 60000");
    }
    print(await client(o.endpoints).updateGroup(streamName, groupName, changes));
  });
  withEndpoints(group.command("fetch <stream> <group>").description("fetch messages for a consumer"))
    .requiredOption("--consumer <name>", "consumer name")
    .option("--max <n>", "messages at most", integer("max"), 10)
    .option("--wait-ms <ms>", "wait this long for messages", integer("wait-ms"), 0)
    .option("--ack", "acknowledge what was printed")
    .option("--json", "print whole messages as JSON")
    .action(
      async (
        streamName: string,
        groupName: string,
        o: {
          endpoints?: string;
          consumer: string;
          max: number;
          waitMs: number;
          ack?: boolean;
          json?: boolean;
        },
      ) => {
        const c = client(o.endpoints);
        const messages = await c.fetchMessages(streamName, groupName, o.consumer, {
          max: o.max,
          waitMs: o.waitMs,
        });
        for (const m of messages) print(o.json ? JSON.stringify(m) : line(m));
        if (o.ack && messages.length > 0)
          await c.ack(
            streamName,
            groupName,
            messages.map((m) => m.seq),
          );
      },
    );
  withEndpoints(
    group.command("ack <stream> <group> <seqs...>").description("acknowledge messages by sequence"),
  ).action(async (streamName: string, groupName: string, seqs: string[], o: { endpoints?: string }) => {
    print(await client(o.endpoints).ack(streamName, groupName, seqs.map(integer("seq"))));
  });
  withEndpoints(
    group.command("info <stream> <group>").description("pending, ack floor, consumers, dead letters"),
  ).action(async (streamName: string, groupName: string, o: { endpoints?: string }) => {
    print(await client(o.endpoints).groupInfo(streamName, groupName));
  });
}

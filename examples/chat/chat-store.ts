// The chat application's data, kept in a Cairn cluster through the public client library only:
// accounts are keys (created once, with `ifAbsent`), each user's inbox is a stream (a message is an
// append whose id deduplicates retries, so a message sent once arrives once), and read flags are
// keys beside it. Every operation goes to any node; the client library finds the leader.
import { randomUUID } from "node:crypto";
import { CairnClient, CairnClientError } from "../../src/client/index.js";
import { hashPassword, type PasswordHash, verifyPassword } from "./password.js";

/** A failure the user can act on, with the text the shell shows. */
export class ChatError extends Error {
  override readonly name = "ChatError";
}

/** One message in an inbox. */
export interface InboxMessage {
  /** The message's number in its recipient's inbox (the stream sequence). */
  readonly id: number;
  readonly sender: string;
  readonly content: string;
  /** When the cluster stored it (the leader's clock), milliseconds since the epoch. */
  readonly sentMs: number;
  readonly read: boolean;
}

/** The cluster's leader as last reported, or null while there is none. */
export interface LeaderInfo {
  readonly name: string;
  readonly httpUrl: string | null;
}

const USERNAME = /^[A-Za-z0-9_-]{1,32}$/;
/** Inbox pages read at most for one listing (1,000 messages each). */
const inboxPagesMax = 100;
/** How long the stream remembers a message id, so a retried send is stored once. */
const dedupeWindowMs = 24 * 3600 * 1000;

const accountKey = (user: string) => `chat/accounts/${user}`;
const readPrefix = (user: string) => `chat/read/${user}/`;
const inboxStream = (user: string) => `chat.inbox.${user}`;

function checkUsername(user: string): void {
  if (!USERNAME.test(user)) {
    throw new ChatError("A username is 1 to 32 letters, digits, '-' or '_'");
  }
}

function isCode(error: unknown, code: string): boolean {
  return error instanceof CairnClientError && error.code === code;
}

/** The chat operations over one cluster. */
export class ChatStore {
  readonly #client: CairnClient;

  /** Talks to the cluster through `endpoints` (any nodes' HTTP URLs). */
  constructor(endpoints: readonly string[], options: { retryBudgetMs?: number } = {}) {
    this.#client = new CairnClient({ endpoints, retryBudgetMs: options.retryBudgetMs ?? 10_000 });
  }

  /** Creates an account once: a second create of the same name fails, whatever its password. */
  async createAccount(user: string, password: string): Promise<void> {
    checkUsername(user);
    if (password === "") throw new ChatError("The password may not be empty");
    // The inbox first: an account never exists without one. Creating it again is a no-op.
    await this.#client.createStream(inboxStream(user), { dedupeWindowMs });
    const hash = await hashPassword(password);
    try {
      await this.#client.put(accountKey(user), JSON.stringify({ ...hash, createdMs: Date.now() }), {
        ifAbsent: true,
      });
    } catch (error) {
      if (isCode(error, "ERR_CONFLICT")) throw new ChatError("Username already exists");
      throw error;
    }
  }

  /** Checks a user's password; "Invalid credentials" when the account or password is wrong. */
  async login(user: string, password: string): Promise<void> {
    const account = USERNAME.test(user) ? await this.#client.get(accountKey(user)) : undefined;
    const hash = account === undefined ? undefined : (JSON.parse(account.value) as PasswordHash);
    if (hash === undefined || !(await verifyPassword(password, hash))) {
      throw new ChatError("Invalid credentials");
    }
  }

  /** Deletes an account, its inbox and its read flags. */
  async deleteAccount(user: string): Promise<void> {
    checkUsername(user);
    // The account first, so no one can address a message to the inbox being deleted.
    await this.#client.delete(accountKey(user));
    await this.#client.deleteStream(inboxStream(user));
    for (let page = 0; page < inboxPagesMax; page++) {
      const flags = await this.#client.list({ prefix: readPrefix(user), limit: 1000 });
      for (const item of flags.items) await this.#client.delete(item.key);
      if (flags.next === null) break;
    }
  }

  /** Every account name, in order. */
  async listAccounts(): Promise<string[]> {
    const names: string[] = [];
    let after: string | undefined;
    do {
      const page = await this.#client.list({
        prefix: "chat/accounts/",
        limit: 1000,
        ...(after !== undefined ? { after } : {}),
      });
      names.push(...page.items.map((item) => item.key.slice("chat/accounts/".length)));
      after = page.next ?? undefined;
    } while (after !== undefined);
    return names;
  }

  /**
   * Sends `content` from `sender` to `recipient`'s inbox. `messageId` makes a retry safe: the
   * inbox stores each id once.
   */
  async send(sender: string, recipient: string, content: string, messageId = randomUUID()): Promise<void> {
    if (content.trim() === "") throw new ChatError("A message may not be empty");
    if (!USERNAME.test(recipient) || (await this.#client.get(accountKey(recipient))) === undefined) {
      throw new ChatError(`No such user: ${recipient}`);
    }
    try {
      await this.#client.append(inboxStream(recipient), JSON.stringify({ sender, content }), {
        id: messageId,
      });
    } catch (error) {
      // The account was deleted between the check and the append.
      if (isCode(error, "ERR_NOT_FOUND")) throw new ChatError(`No such user: ${recipient}`);
      throw error;
    }
  }

  /** The newest `limit` messages of `user`'s inbox, newest first, with their read flags. */
  async inbox(user: string, limit = 20): Promise<InboxMessage[]> {
    checkUsername(user);
    const all: InboxMessage[] = [];
    const read = await this.#readFlags(user);
    let from: number | undefined;
    for (let page = 0; page < inboxPagesMax; page++) {
      let messages: Awaited<ReturnType<CairnClient["read"]>>;
      try {
        messages = await this.#client.read(inboxStream(user), { limit: 1000, ...(from ? { from } : {}) });
      } catch (error) {
        if (isCode(error, "ERR_NOT_FOUND")) throw new ChatError(`No such user: ${user}`);
        throw error;
      }
      for (const item of messages.messages) {
        const body = JSON.parse(item.payload) as { sender: string; content: string };
        all.push({ id: item.seq, ...body, sentMs: item.tsMs, read: read.has(item.seq) });
      }
      if (messages.messages.length === 0 || messages.next > messages.lastSeq) break;
      from = messages.next;
    }
    return all.slice(-limit).reverse();
  }

  /** Marks messages of `user`'s inbox as read; answers how many of them exist. */
  async markRead(user: string, ids: readonly number[]): Promise<number> {
    let marked = 0;
    for (const id of ids) {
      if (!(await this.#holds(user, id))) continue;
      await this.#client.put(`${readPrefix(user)}${id}`, "1");
      marked++;
    }
    return marked;
  }

  /** Deletes messages from `user`'s inbox; answers how many were there. */
  async deleteMessages(user: string, ids: readonly number[]): Promise<number> {
    let deleted = 0;
    for (const id of ids) {
      if (!(await this.#holds(user, id))) continue;
      await this.#client.request(
        "DELETE",
        `/v1/streams/${encodeURIComponent(inboxStream(user))}/messages/${id}`,
        undefined,
        randomUUID(),
      );
      await this.#client.delete(`${readPrefix(user)}${id}`);
      deleted++;
    }
    return deleted;
  }

  /** The node that leads the cluster now, or null while there is none. */
  async leader(): Promise<LeaderInfo | null> {
    const status = (await this.#client.request("GET", "/v1/cluster")) as {
      leader: { id: number; name: string | null; httpUrl: string | null } | null;
    };
    if (status.leader === null) return null;
    return { name: status.leader.name ?? `node ${status.leader.id}`, httpUrl: status.leader.httpUrl };
  }

  async #holds(user: string, id: number): Promise<boolean> {
    try {
      await this.#client.request(
        "GET",
        `/v1/streams/${encodeURIComponent(inboxStream(user))}/messages/${id}`,
      );
      return true;
    } catch (error) {
      if (isCode(error, "ERR_NOT_FOUND")) return false;
      throw error;
    }
  }

  async #readFlags(user: string): Promise<Set<number>> {
    const read = new Set<number>();
    let after: string | undefined;
    for (let page = 0; page < inboxPagesMax; page++) {
      const flags = await this.#client.list({
        prefix: readPrefix(user),
        limit: 1000,
        ...(after !== undefined ? { after } : {}),
      });
      for (const item of flags.items) read.add(Number(item.key.slice(readPrefix(user).length)));
      after = flags.next ?? undefined;
      if (after === undefined) break;
    }
    return read;
  }
}

// A HaToKuSe client that behaves as Tolerex's own (cmd/client in measuring mode): it syncs on the
// literal prompt, sends one command line, and takes everything up to the next prompt as the reply.
// If the server's prompt differed by one byte, this client would wait forever (the test's timeout
// turns that into a failure), which is exactly what Tolerex's client would do.
import { connect, type Socket } from "node:net";

/** One connection that talks in prompt-delimited turns. */
export class PromptClient {
  readonly #socket: Socket;
  readonly #prompt: Buffer;
  #buffer = Buffer.alloc(0);
  #closed = false;
  #wake: (() => void) | undefined;

  private constructor(socket: Socket, prompt: string) {
    this.#socket = socket;
    this.#prompt = Buffer.from(prompt, "latin1");
    socket.on("data", (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake?.();
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#wake?.();
    });
    socket.on("error", () => undefined);
  }

  /** Connects and waits for the first prompt; resolves with the client and the banner before it. */
  static async connect(
    host: string,
    port: number,
    prompt: string,
  ): Promise<{ client: PromptClient; banner: string }> {
    const socket = connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const client = new PromptClient(socket, prompt);
    const banner = await client.#untilPrompt();
    return { client, banner: banner.toString("latin1") };
  }

  /** Sends one raw line (LF-terminated unless `terminator` says) and returns the raw reply bytes. */
  async sendRaw(line: Uint8Array | string, terminator = "\n"): Promise<Buffer> {
    this.#socket.write(Buffer.concat([Buffer.from(line), Buffer.from(terminator)]));
    return this.#untilPrompt();
  }

  /** Sends a command and returns its reply without the trailing CRLF (or `Bye` and the close). */
  async command(line: string): Promise<string> {
    const reply = (await this.sendRaw(line)).toString("utf8");
    return reply.endsWith("\r\n") ? reply.slice(0, -2) : reply;
  }

  /** Reads the next reply already sent (for pipelined requests), without its trailing CRLF. */
  async nextReply(): Promise<string> {
    const reply = (await this.#untilPrompt()).toString("utf8");
    return reply.endsWith("\r\n") ? reply.slice(0, -2) : reply;
  }

  /** Whether the server closed the connection. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Closes the connection. */
  close(): void {
    this.#socket.destroy();
  }

  /** Waits until the buffer holds a prompt (returns what came before it) or the socket closed. */
  async #untilPrompt(): Promise<Buffer> {
    for (;;) {
      const at = this.#buffer.indexOf(this.#prompt);
      if (at !== -1) {
        const before = this.#buffer.subarray(0, at);
        this.#buffer = this.#buffer.subarray(at + this.#prompt.length);
        return before;
      }
      if (this.#closed) {
        const rest = this.#buffer;
        this.#buffer = Buffer.alloc(0);
        return rest;
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
  }
}

// Listening and closing for the protocol adapters that serve plain TCP (Redis, text): one place
// that binds, reports the port actually bound (port 0 in tests) and, on close, ends every open
// connection so a stopping node does not wait on idle clients.
import type { Server, Socket } from "node:net";

/** A listening TCP server: where it listens and how to stop it. */
export interface TcpListener {
  readonly host: string;
  readonly port: number;
  /** Stops accepting, destroys every open connection and resolves once the server closed. */
  close(): Promise<void>;
}

/** Starts `server` on `listen`; rejects with the bind error (EADDRINUSE...) when it cannot. */
export async function listenTcp(
  server: Server,
  listen: { readonly host: string; readonly port: number },
): Promise<TcpListener> {
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address();
  const port = typeof bound === "object" && bound !== null ? bound.port : listen.port;
  return {
    host: listen.host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

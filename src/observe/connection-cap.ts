import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Caps a server's open connections without turning new ones away: past `max`, the oldest
 * connection with no request in progress (one still sending its headers, or an idle
 * keep-alive) is closed to make room. `server.maxConnections` refuses the newcomer
 * instead, so 64 stalled clients kept every liveness probe out.
 */
export function capConnections(server: Server, max: number): void {
  const open = new Set<Socket>();
  // Insertion order is age: a socket is re-added when its request ends.
  const idle = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    open.add(socket);
    idle.add(socket);
    socket.once('close', () => {
      open.delete(socket);
      idle.delete(socket);
    });
    if (open.size <= max) return;
    const oldest = [...idle].find((candidate) => candidate !== socket);
    (oldest ?? socket).destroy();
  });
  server.on('request', (request, response) => {
    const { socket } = request;
    idle.delete(socket);
    response.once('close', () => {
      if (!socket.destroyed) idle.add(socket);
    });
  });
}

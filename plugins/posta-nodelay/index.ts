// Sets TCP_NODELAY on every socket Haraka uses. Haraka never does (tls_socket makes setNoDelay a no-op), and
// against a pipelining client Nagle then holds the second small reply until the client's delayed ACK:
// about 44 ms per message (reference/haraka.md). List this plugin first in config/plugins.
import * as net from 'node:net'
import type { Connection, Next } from '../shared/haraka'

export function register() {
  // Outbound delivery and forward client sockets.
  const proto = net.Socket.prototype as unknown as { connect: (...a: unknown[]) => unknown; __posta_nodelay?: boolean }
  if (proto.__posta_nodelay) return
  const connect = proto.connect
  proto.connect = function (this: net.Socket, ...args: unknown[]) {
    this.setNoDelay(true)
    return connect.apply(this, args)
  }
  proto.__posta_nodelay = true
}

export function hook_connect_init(next: Next, connection: Connection) {
  // Inbound sockets: on the SMTP and submission ports the real socket sits under Haraka's wrapper (whose own
  // setNoDelay does nothing); on the SMTPS port the client is Node's TLS socket itself, which passes it to TCP.
  const client = connection.client as { targetsocket?: { setNoDelay?: (b: boolean) => void }; setNoDelay?: (b: boolean) => void } | undefined
  const s = client?.targetsocket ?? client
  if (typeof s?.setNoDelay === 'function') s.setNoDelay(true)
  next()
}

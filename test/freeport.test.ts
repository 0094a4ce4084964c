// freePort, which every test and benchmark uses to pick the ports of the servers it starts: a port stays free until
// its taker binds it, so two calls in one process must never hand out the same port (CI once saw npm start refuse
// a submission port equal to the panel's).
import { strict as assert } from 'node:assert'
import * as net from 'node:net'
import { freePort } from '../service/redis-server'

describe('freePort', () => {
  it('never hands out one port twice in a process, though none of them is bound yet', async () => {
    // 600 draws from 12,000 ports: at random, about 15 pairs would collide.
    const ports: number[] = []
    for (let i = 0; i < 600; i++) ports.push(await freePort())
    assert.equal(new Set(ports).size, ports.length)
    for (const p of ports) assert.ok(p >= 20000 && p < 32000, `${p} lies below the ephemeral range`)
  })

  it('skips a port another server holds', async () => {
    const held: net.Server[] = []
    try {
      // Hold a block of the range, then check no port of it is handed out.
      const holding = new Set<number>()
      for (let port = 20000; port < 26000; port++) {
        const srv = net.createServer()
        const ok = await new Promise<boolean>((resolve) => {
          srv.once('error', () => resolve(false))
          srv.listen(port, '127.0.0.1', () => resolve(true))
        })
        if (ok) { held.push(srv); holding.add(port) }
      }
      for (let i = 0; i < 50; i++) assert.equal(holding.has(await freePort()), false)
    } finally {
      await Promise.all(held.map((s) => new Promise((r) => s.close(r))))
    }
  })
})

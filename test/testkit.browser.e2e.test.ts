// testkit/browser.ts: Debian's Chromium through playwright-core renders a loopback page, and leaves no process behind.
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import { artifactPath, CHROMIUM, launchBrowser, withBrowser } from '../testkit/browser'

/** Chromium processes whose parent is this test process (the browser Playwright launched). */
function chromiumChildren(): number[] {
  const out: number[] = []
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
      const m = /^\d+ \((.*)\) (\S) (\d+)/.exec(stat)
      if (m && Number(m[3]) === process.pid && /chrom/i.test(m[1]) && m[2] !== 'Z') out.push(Number(pid))
    } catch {
      /* gone meanwhile */
    }
  }
  return out
}

describe('testkit browser (Debian Chromium via playwright-core)', function () {
  this.timeout(120000)
  let server: http.Server
  let url: string

  before(async () => {
    server = http.createServer((req, res) => {
      res.setHeader('content-type', 'text/html; charset=utf-8')
      res.end(`<html lang="it"><body><h1>Traffico: ${(1.5).toLocaleString('it-IT')} GB</h1><p id="ua">${req.headers['accept-language'] ?? ''}</p></body></html>`)
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  })
  after(() => new Promise<void>((r) => server.close(() => r())))

  it('launches the system Chromium, renders a page, screenshots it and closes every process', async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} missing`)
    const b = await launchBrowser()
    try {
      assert.match(b.browser.version(), /^\d+\./)
      assert.ok(chromiumChildren().length > 0, 'a Chromium child process runs')
      const { page } = await b.newPage({ locale: 'it-IT' })
      await page.goto(url)
      assert.equal(await page.textContent('h1'), 'Traffico: 1,5 GB')
      assert.match((await page.textContent('#ua')) ?? '', /^it-IT/)
      const shot = artifactPath('testkit-browser.png')
      await page.screenshot({ path: shot })
      assert.equal(fs.readFileSync(shot).subarray(1, 4).toString(), 'PNG')
    } finally {
      await b.close()
    }
    await b.close() // idempotent
    assert.deepEqual(chromiumChildren(), [])
  })

  it('withBrowser closes the browser when the test body throws', async () => {
    let inside: import('playwright-core').Browser | null = null
    await assert.rejects(withBrowser(async (b) => {
      inside = b.browser
      throw new Error('boom')
    }), /boom/)
    assert.equal(inside!.isConnected(), false)
    assert.deepEqual(chromiumChildren(), [])
  })
})

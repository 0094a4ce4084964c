// A real browser for tests: Debian's Chromium (apt package `chromium`, installed by .ci/run) driven by
// playwright-core. Playwright never downloads a browser here: we always launch the system's executable.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { PROJECT_ROOT } from '../service/haraka-dir'

/** Debian's Chromium; nothing else is launched. */
export const CHROMIUM = '/usr/bin/chromium'

/** Headless, no sandbox (tests run as root in CI), no GPU, and no background traffic to Google's services. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']

/** Where tests save screenshots and other artifacts (gitignored). */
export const ARTIFACTS_DIR = path.join(PROJECT_ROOT, 'test', 'artifacts')

export interface TestBrowser {
  browser: Browser
  /** A fresh context (its own cookies) with one page; closed with the browser. */
  newPage(opts?: { locale?: string }): Promise<{ context: BrowserContext; page: Page }>
  /** Closes every context and the browser; the Chromium processes are gone when it resolves. Idempotent. */
  close(): Promise<void>
}

export async function launchBrowser(): Promise<TestBrowser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`testkit: ${CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium); .ci/run does it`)
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 60000 })
  let closed: Promise<void> | null = null
  return {
    browser,
    async newPage(opts = {}) {
      // a fixed locale, so that Accept-Language (and so the panel's language) is the test's choice, not the machine's
      const context = await browser.newContext({ locale: opts.locale ?? 'en-US', viewport: { width: 1280, height: 900 } })
      context.setDefaultTimeout(30000)
      return { context, page: await context.newPage() }
    },
    close() {
      closed ??= (async () => {
        await Promise.all(browser.contexts().map((c) => c.close().catch(() => {})))
        await browser.close().catch(() => {})
      })()
      return closed
    },
  }
}

/** Runs fn with a browser and closes it however fn ends. */
export async function withBrowser<T>(fn: (b: TestBrowser) => Promise<T>): Promise<T> {
  const b = await launchBrowser()
  try {
    return await fn(b)
  } finally {
    await b.close()
  }
}

/** The path of an artifact (e.g. a screenshot), its directory created. */
export function artifactPath(name: string): string {
  fs.mkdirSync(ARTIFACTS_DIR, { recursive: true })
  return path.join(ARTIFACTS_DIR, name)
}

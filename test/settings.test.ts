// The environment settings (lib/settings.ts): each variable's bad values are refused with a sentence naming the
// variable, the value and what is allowed (a Redis password never shown); good values and defaults pass.
import { strict as assert } from 'node:assert'
import * as os from 'node:os'
import { loadSettings } from '../lib/settings'

describe('settings: the environment', () => {
  it('defaults', () => {
    const s = loadSettings({})
    assert.equal(s.serviceDomain, 'posta.localhost')
    assert.equal(s.hostname, 'smtp.posta.localhost')
    assert.deepEqual([s.smtpPort, s.submissionPort, s.smtpsPort, s.panelPort], [2525, 2587, 2465, 8080])
    assert.equal(s.tls, null)
    assert.match(s.redisUrl, /^unix:\/\/.*redis\.sock$/)
    assert.equal(s.node, os.hostname().toLowerCase(), 'the node is named after the host')
    assert.equal(loadSettings({ POSTA_NODE: 'Relay-2.eu' }).node, 'relay-2.eu')
    assert.deepEqual(s.metrics, { port: 9587, listen: '127.0.0.1' })
  })

  it('metrics: a port and an address, or 0 for none', () => {
    assert.deepEqual(loadSettings({ POSTA_METRICS_PORT: '9100', POSTA_METRICS_LISTEN: '::' }).metrics, { port: 9100, listen: '::' })
    assert.deepEqual(loadSettings({ POSTA_METRICS_PORT: '0' }).metrics, { port: 0, listen: '127.0.0.1' })
    assert.deepEqual(loadSettings({ POSTA_METRICS_PORT: '' }).metrics.port, 9587)
  })

  it('good values are taken', () => {
    const s = loadSettings({
      POSTA_SERVICE_DOMAIN: 'Soloposta.Biz.', POSTA_LISTEN: '127.0.0.1', POSTA_SMTP_PORT: '25', POSTA_HOSTNAME: 'mx1.soloposta.biz',
      POSTA_TLS_KEY: '/k.pem', POSTA_TLS_CERT: '/c.pem', REDIS_URL: 'redis://u:secret@10.0.0.1:6380/2', POSTA_CLOCK_OFFSET_MS: '-3600000',
      POSTA_RESOLVERS: ' 127.0.0.1:5353, [::1]:53 ',
    })
    assert.deepEqual(s.resolvers, ['127.0.0.1:5353', '[::1]:53'])
    assert.equal(s.serviceDomain, 'soloposta.biz')
    assert.equal(s.smtpPort, 25)
    assert.deepEqual(s.tls, { key: '/k.pem', cert: '/c.pem' })
    assert.equal(s.hostname, 'mx1.soloposta.biz')
  })

  const bad: [Record<string, string>, RegExp][] = [
    [{ POSTA_SMTP_PORT: '0' }, /^POSTA_SMTP_PORT=0 is not a TCP port \(allowed: an integer from 1 to 65535\)$/],
    [{ POSTA_SUBMISSION_PORT: '70000' }, /^POSTA_SUBMISSION_PORT=70000 is not a TCP port/],
    [{ POSTA_SMTPS_PORT: '46 5' }, /^POSTA_SMTPS_PORT=46 5 is not a TCP port/],
    [{ POSTA_PANEL_PORT: '0x50' }, /^POSTA_PANEL_PORT=0x50 is not a TCP port/],
    [{ POSTA_SMTP_PORT: '2587' }, /^POSTA_SMTP_PORT, POSTA_SUBMISSION_PORT, POSTA_SMTPS_PORT and POSTA_PANEL_PORT must differ \(2587, 2587, 2465, 8080\)$/],
    [{ POSTA_SERVICE_DOMAIN: 'localhost' }, /^POSTA_SERVICE_DOMAIN=localhost is not a domain name/],
    [{ POSTA_TIMEZONE: 'Mars/Olympus' }, /^POSTA_TIMEZONE=Mars\/Olympus is not an IANA time zone/],
    [{ POSTA_LISTEN: 'everywhere' }, /^POSTA_LISTEN=everywhere is refused: allowed is an IP address/],
    [{ POSTA_HOSTNAME: 'smtp_1' }, /^POSTA_HOSTNAME=smtp_1 is not a host name/],
    [{ POSTA_TLS_KEY: '/k.pem' }, /^POSTA_TLS_KEY and POSTA_TLS_CERT go together/],
    [{ POSTA_CLOCK_OFFSET_MS: '1h' }, /^POSTA_CLOCK_OFFSET_MS=1h is refused: allowed is an integer number of milliseconds/],
    [{ POSTA_RESOLVERS: '127.0.0.1:53,dns.google' }, /^POSTA_RESOLVERS=127\.0\.0\.1:53,dns\.google is refused: allowed is a comma-separated list of IP addresses/],
    [{ POSTA_NODE: 'relay 1' }, /^POSTA_NODE=relay 1 is not a node name \(allowed: letters, digits, '\.', '_' and '-', up to 63, e\.g\. relay-1\)$/],
    [{ POSTA_NODE: 'relay-' }, /^POSTA_NODE=relay- is not a node name/],
    [{ REDIS_URL: 'http://127.0.0.1:6379' }, /^REDIS_URL=http:\/\/127\.0\.0\.1:6379: expected redis:\/\//],
    [{ POSTA_METRICS_PORT: '65536' }, /^POSTA_METRICS_PORT=65536 is refused: allowed is a TCP port from 1 to 65535, or 0 \(no metrics\)$/],
    [{ POSTA_METRICS_PORT: '-1' }, /^POSTA_METRICS_PORT=-1 is refused/],
    [{ POSTA_METRICS_PORT: '00' }, /^POSTA_METRICS_PORT=00 is refused/],
    [{ POSTA_METRICS_PORT: '8080' }, /^POSTA_METRICS_PORT=8080 is refused: it is one of the SMTP, submission, SMTPS or panel ports$/],
    [{ POSTA_METRICS_LISTEN: 'localhost' }, /^POSTA_METRICS_LISTEN=localhost is refused: allowed is an IP address/],
    [{ REDIS_URL: 'redis://u:hunter2@127.0.0.1:6379/x' }, /^REDIS_URL=redis:\/\/u:\*\*\*@127\.0\.0\.1:6379\/x: the database "x" is not a number/],
    [{ REDIS_URL: 'unix://' }, /^REDIS_URL=unix:\/\/: the socket path is missing/],
    [{ REDIS_URL: 'redis+sentinel://u:hunter2@10.0.0.1:26379,10.0.0.2:26379' }, /^REDIS_URL=redis\+sentinel:\/\/u:\*\*\*@10\.0\.0\.1:26379,10\.0\.0\.2:26379: expected the master's name after the hosts/],
    [{ REDIS_URL: 'redis+sentinel://10.0.0.1:26379/mymaster/2/3' }, /: expected the master's name after the hosts, and an optional database/],
    [{ REDIS_URL: 'redis+sentinel://10.0.0.1:26379/mymaster/two' }, /^REDIS_URL=redis\+sentinel:\/\/10\.0\.0\.1:26379\/mymaster\/two: the database "two" is not a number/],
    [{ REDIS_URL: 'redis+sentinel://10.0.0.1:99999/mymaster' }, /: "10\.0\.0\.1:99999" is not host:port/],
    [{ REDIS_URL: 'redis+sentinel:///mymaster' }, /^REDIS_URL=redis\+sentinel:\/\/\/mymaster: no host:port listed$/],
    [{ REDIS_URL: 'redis+cluster://u:hunter2@10.0.0.1:7000,,10.0.0.2:7000' }, /^REDIS_URL=redis\+cluster:\/\/u:\*\*\*@10\.0\.0\.1:7000,,10\.0\.0\.2:7000: "" is not host:port/],
    [{ REDIS_URL: 'redis+cluster://10.0.0.1:7000/1' }, /: a Redis Cluster has only database 0, so the URL takes no \/path$/],
    [{ REDIS_URL: 'redis+cluster://::1:7000' }, /: "::1:7000" is not host:port \(an IPv6 address goes in brackets: \[::1\]:6379\)$/],
    [{ REDIS_URL: 'redis+cluster://10.0.0.1:7000?tls=1' }, /^REDIS_URL=redis\+cluster:\/\/10\.0\.0\.1:7000\?tls=1: expected redis:\/\//],
    [{ REDIS_URL: 'redis+sharded://10.0.0.1:7000' }, /: expected redis:\/\/.*redis\+sentinel:\/\/.*redis\+cluster:\/\//],
  ]
  for (const [env, re] of bad) {
    it(`refuses ${JSON.stringify(env)}`, () => {
      assert.throws(() => loadSettings(env), (err: Error) => re.test(err.message) && !err.message.includes('hunter2'))
    })
  }
})

// lib/bounce.ts: the lines a bounce shows per recipient, in each language, and the id the client saw.
import { strict as assert } from 'node:assert'
import { formatDuration, isExpiry, recipientLine, remoteReply, txOfDelivery } from '../lib/bounce'

describe('bounce texts', () => {
  it('the remote reply: from the SMTP fields, else Haraka\'s per-recipient line, else its reason', () => {
    assert.equal(remoteReply({ dsn_smtp_code: '550', dsn_smtp_extc: '5.1.1', dsn_smtp_response: '<x@y>: no such\r\n user' }, 'ignored'), '550 5.1.1 <x@y>: no such user')
    assert.equal(remoteReply({ dsn_smtp_code: '554', dsn_smtp_response: 'rejected' }, ''), '554 rejected', 'no enhanced status')
    assert.equal(remoteReply({ reason: '452 4.2.2 over quota' }, 'x'), '452 4.2.2 over quota')
    assert.equal(remoteReply({}, 'Error: Tried all MXs'), 'Tried all MXs', 'no server answered')
  })

  it('an expired message says how long it was tried, in the language', () => {
    const r = { dsn_smtp_code: '450', dsn_smtp_extc: '4.2.1', dsn_smtp_response: 'busy' }
    assert.equal(recipientLine(r, 'Some recipients failed', 'en'), '450 4.2.1 busy')
    assert.equal(recipientLine(r, 'Too many failures (Upstream error: 450 busy)', 'en', { attempts: 22, ms: 5 * 86400000 }),
      '450 4.2.1 busy (a temporary error: 22 attempts over 5 days, then delivery was given up)')
    assert.equal(recipientLine(r, 'Too many failures (x)', 'it', { attempts: 3, ms: 10400 }),
      '450 4.2.1 busy (errore temporaneo: 3 tentativi in 10 secondi, poi Posta ha rinunciato alla consegna)')
    assert.equal(recipientLine({}, 'Error: Too many failures (Tried all MXs)', 'en', { attempts: 2, ms: 600000 }),
      'Tried all MXs (a temporary error: 2 attempts over 10 minutes, then delivery was given up)', "Haraka's last error when no server answered")
    assert.ok(isExpiry('Too many failures (Tried all MXs)'))
    assert.ok(isExpiry('Error: Too many failures (x)'))
    assert.ok(!isExpiry('Some recipients failed: <a@b>'))
  })

  it('durations in the largest whole unit', () => {
    assert.equal(formatDuration(1000, 'en'), '1 second')
    assert.equal(formatDuration(119000, 'en'), '119 seconds')
    assert.equal(formatDuration(3 * 3600000, 'it'), '3 ore')
    assert.equal(formatDuration(3600000, 'it'), '60 minuti')
    assert.equal(formatDuration((4 * 24 + 23) * 3600000 + 46 * 60000, 'en'), '5 days', 'the shipped schedule')
    assert.equal(formatDuration(86400000, 'it'), '24 ore')
    assert.equal(formatDuration(-5, 'en'), '0 seconds')
  })

  it('the id the client saw, from Haraka\'s per-domain delivery id', () => {
    assert.equal(txOfDelivery('D9779CC2-8C56-44C4-9A1C-5A2DF7DB55ED.1.1'), 'D9779CC2-8C56-44C4-9A1C-5A2DF7DB55ED.1')
    assert.equal(txOfDelivery('D9779CC2-8C56-44C4-9A1C-5A2DF7DB55ED.3.12'), 'D9779CC2-8C56-44C4-9A1C-5A2DF7DB55ED.3')
    assert.equal(txOfDelivery('0130FE36-EE0E-49AE-86FA-227EB0465FC2.1'), '0130FE36-EE0E-49AE-86FA-227EB0465FC2', "a DSN's own transaction")
  })
})

// lib/submission.ts: the typed contract over a message's notes survives the queue (a JSON round trip, as Haraka
// writes notes into each queue file and reads them back as hmail.todo.notes) and refuses what is not well formed.
import { strict as assert } from 'node:assert'
import {
  isBanned, isDropped, loginOf, markBanned, markDropped, noticeNotes, noticeOf, reservationOf, senderFields, senderOf, setReservation,
  setLogin, setSender, setSize, setSourceIp, sizeOf, sourceIpOf, tenantOf, type Notes,
} from '../lib/submission'

/** What Haraka does to notes between the queue write and a delivery after a restart. */
const throughQueue = (n: Notes): Notes => JSON.parse(JSON.stringify(n))

const R = { tenant: 'acme', id: 'F2AEE00C-1.1', bytes: 2048, recipients: 2, month: '2026-12', day: '2026-12-02' }

describe('submission: what a message carries', () => {
  it('keeps sender, size, reservation and source IP through the queue file', () => {
    const n: Notes = {}
    setSender(n, { tenant: 'acme', auth_user: 'app@acme', client_ip: '192.0.2.7' })
    setSize(n, 1024.7)
    setReservation(n, { ...R, extra: 'not carried' } as typeof R)
    setSourceIp(n, '198.51.100.3')
    const q = throughQueue(n)
    assert.equal(tenantOf(q), 'acme')
    assert.deepEqual(senderOf(q), { tenant: 'acme', auth_user: 'app@acme', client_ip: '192.0.2.7' })
    assert.equal(sizeOf(q), 1024)
    assert.deepEqual(reservationOf(q), R)
    assert.equal(sourceIpOf(q), '198.51.100.3')
    // the names in the queue file stay those of earlier versions: mail queued before an upgrade is still read
    assert.deepEqual(Object.keys(q).sort(), ['auth_user', 'client_ip', 'posta_reservation', 'posta_source_ip', 'size', 'tenant'])
  })

  it('mail of the relay itself has no sender and no reservation', () => {
    const n = throughQueue(noticeNotes('quota', 'acme'))
    assert.equal(tenantOf(n), undefined)
    assert.equal(senderOf(n), null)
    assert.equal(reservationOf(n), undefined)
    assert.deepEqual(noticeOf(n), { kind: 'quota', tenant: 'acme' })
    assert.deepEqual(senderFields(n), { tenant: '-', auth_user: '-', client_ip: '-' })
    assert.deepEqual(senderFields(undefined), { tenant: '-', auth_user: '-', client_ip: '-' })
    assert.equal(noticeOf({}), undefined)
  })

  it('refuses damaged or foreign values instead of passing them on', () => {
    assert.equal(tenantOf({ tenant: 42 }), undefined)
    assert.equal(tenantOf({ tenant: '' }), undefined)
    assert.equal(sizeOf({ size: '1024' }), 0)
    assert.equal(sizeOf({ size: -5 }), 0)
    assert.equal(sizeOf(null), 0)
    for (const bad of [
      'acme|F2|2048', null, [], { ...R, bytes: '2048' }, { ...R, bytes: -1 }, { ...R, bytes: 1.5 }, { ...R, id: '' },
      { ...R, month: '2026-13-01' }, { ...R, day: 'today' }, { ...R, tenant: undefined }, { ...R, recipients: NaN },
    ]) assert.equal(reservationOf({ posta_reservation: bad }), undefined, JSON.stringify(bad))
    assert.equal(sourceIpOf({ posta_source_ip: 7 }), undefined)
  })

  it('flags: dropped (closed tenant) and banned (during the session)', () => {
    const n: Notes = {}
    assert.equal(isDropped(n), false)
    assert.equal(isBanned(n), false)
    markDropped(n)
    markBanned(n)
    assert.equal(isDropped(throughQueue(n)), true)
    assert.equal(isBanned(n), true)
    assert.equal(isDropped({ posta_dropped: 'yes' }), false)
  })

  it('the login of a connection: both parts or none', () => {
    const c: Notes = {}
    assert.equal(loginOf(c), null)
    setLogin(c, { tenant: 'acme', auth_user: 'app@acme' })
    assert.deepEqual(loginOf(c), { tenant: 'acme', auth_user: 'app@acme' })
    assert.equal(loginOf({ tenant: 'acme' }), null)
    assert.equal(loginOf({ tenant: 'acme', auth_user: 5 }), null)
    assert.equal(loginOf(undefined), null)
  })
})

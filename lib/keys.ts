// Every Redis key Posta uses is named here and nowhere else.
// Keys of one tenant carry its slug as a hash tag ({acme}) so that a tenant's keys share a Redis Cluster slot
// and one Lua script may touch several of them. Every MULTI, pipeline, multi-key command and script touches keys of
// one hash tag only ({slug}, {pool}, {packages}, {investigations}, {sessions}, {bans}, {<ip>}, {<login>}), so all of them work on a
// Redis Cluster (docs/redis.md). The tags of pool, packages, investigations and an IP's ledger hours came with Cluster
// support; the service had no production data then, so the old names need no migration.
const P = 'posta:'

export const keys = {
  /** HASH of the service settings the running service published (service domain, public ports) for the CLI. */
  published: () => `${P}published`,

  /** SET of package names. */
  packages: () => `${P}{packages}`,
  /** HASH name, traffic_bytes, created_at. Tagged like the set, so one MULTI writes both. */
  package: (name: string) => `${P}{packages}:package:${name}`,

  /** SET of tenant slugs. */
  tenants: () => `${P}tenants`,
  /** HASH slug, package, status, contact, created_at, updated_at. */
  tenant: (slug: string) => `${P}tenant:{${slug}}`,
  /** HASH local part -> password hash (scrypt$...). */
  credentials: (slug: string) => `${P}tenant:{${slug}}:credentials`,

  /** HASH bytes, messages (committed traffic), topup (extra bytes this month), warned_<pct> flags. */
  usageMonth: (slug: string, month: string) => `${P}usage:{${slug}}:${month}`,
  /** ZSET of in-flight reservations `<id>|<bytes>`, score = deadline in ms. */
  reservations: (slug: string, month: string) => `${P}usage:{${slug}}:${month}:res`,
  /** Marker that a reservation was committed (guards against a double commit). */
  committed: (slug: string, id: string) => `${P}usage:{${slug}}:done:${id}`,
  /** HASH bytes, messages, recipients of one day; and the ledger's per-recipient delivered, deferred, bounced
   *  (and dsn_*, notice_* for the mail Posta sent about the tenant). */
  usageDay: (slug: string, day: string) => `${P}usage:{${slug}}:${day}`,

  /** HASH ip -> JSON of the pool entry (helo, state, reason, since, added_at). */
  pool: () => `${P}{pool}`,
  /** Counter bumped by every change of the pool, so nodes re-read it only when it changed. */
  poolVersion: () => `${P}{pool}:version`,
  /** HASH ip -> time of its last delivery attempt (ms). */
  poolLastUse: () => `${P}{pool}:lastuse`,
  /** LIST of JSON events of an IP (added, suspended, reinstated, ...), newest first. */
  ipHistory: (ip: string) => `${P}ip:${ip}:history`,
  /** The source IP a queued message first used, so its retries keep it. */
  sticky: (id: string) => `${P}sticky:${id}`,

  /** HASH of one IP's traffic in one UTC hour: `<tenant>|<field>` -> count (attempts, delivered, deferred, bounced, bytes). */
  ledgerIpHour: (ip: string, hour: string) => `${P}ledger:ip:{${ip}}:${hour}`,
  /** ZSET of a tenant's recent delivery attempts (JSON), score = time in ms. */
  ledgerRecent: (slug: string) => `${P}ledger:{${slug}}:recent`,

  /** SET of the recipients of one message (tx) already counted deferred: each is counted once, however many retries. */
  ledgerDeferred: (slug: string, tx: string) => `${P}ledger:{${slug}}:deferred:${tx}`,

  /** HASH domain -> first time (ms) the tenant sent to it: tells new recipient domains from known ones. */
  ledgerDomains: (slug: string) => `${P}ledger:{${slug}}:domains`,

  /** HASH zone -> JSON of the IP's last known check on that zone (state, answers, meaning, txt, since). */
  monitorIp: (ip: string) => `${P}monitor:ip:${ip}`,
  /** Claimed by the one node that runs the cycle of this interval window. */
  monitorCycle: (window: number) => `${P}monitor:cycle:${window}`,
  /** STRING a node writes before its WAIT that confirms its quota commits reached a replica (Sentinel only; expires). */
  replicaCheck: (node: string) => `${P}replica-check:${node}`,
  /** LIST of JSON summaries of recent cycles, newest first. */
  monitorCycles: () => `${P}monitor:cycles`,
  /** JSON of one investigation. */
  investigation: (id: string) => `${P}{investigations}:${id}`,
  /** ZSET of investigation ids, score = time opened (ms). Tagged like each investigation: one MULTI saves and lists it. */
  investigations: () => `${P}{investigations}`,

  // ---- Spamtraps, bans, suppression (lib/traps.ts, lib/bans.ts, lib/suppression.ts) ----
  /** HASH entry (user@domain or @domain) -> JSON of the trap (class, note, added_at). Secret: never shown to tenants. */
  traps: () => `${P}traps`,
  /** HASH of a tenant's trap hits: hits (all classes), pristine, recycled, typo. */
  trapHits: (slug: string) => `${P}trap:{${slug}}:hits`,
  /** ZSET of a tenant's typo-trap strikes `<tx>|<recipient>`, score = time (ms); strikes older than the window drop out. */
  trapStrikes: (slug: string) => `${P}trap:{${slug}}:strikes`,
  /** ZSET of a tenant's suppressed recipients (they hard-bounced), score = expiry (ms). */
  suppression: (slug: string) => `${P}suppression:{${slug}}`,
  /** ZSETs of the sender domains and client IPs a tenant used, score = last use (ms), the latest few kept: a ban's evidence. */
  tenantSenders: (slug: string) => `${P}tenant:{${slug}}:senders`,
  tenantClients: (slug: string) => `${P}tenant:{${slug}}:clients`,
  // The ban keys share the {bans} hash tag, so one MULTI appends to the ledger and sets the markers.
  /** LIST of every ban ever (JSON), append-only: nothing removes an entry. */
  bans: () => `${P}{bans}:ledger`,
  /** Markers (value: the banned tenant) of banned slugs, contacts (canonical form) and domains, checked at tenant creation. */
  bannedSlug: (slug: string) => `${P}{bans}:slug:${slug}`,
  bannedContact: (contact: string) => `${P}{bans}:contact:${contact}`,
  bannedDomain: (domain: string) => `${P}{bans}:domain:${domain}`,
  // ---- end of spamtraps, bans, suppression ----

  // ---- Operator accounts and the audit log of their actions (lib/operators.ts, lib/audit.ts) ----
  /** HASH operator name -> JSON of the account (name, password hash, created_at, password_changed_at). */
  operators: () => `${P}operators`,
  /** LIST of JSON entries of operator actions (operator, action, target, at, details), append-only, oldest first. */
  audit: () => `${P}audit`,
  // ---- end of operator accounts ----

  // ---- Sender domains (lib/domains.ts) ----
  // The three keys share the {domains} hash tag, so one script checks a domain's parents and subdomains against
  // every other tenant's and writes the tenant's entry and the ownership together (lib/lua/domain_claim.lua).
  /** HASH verified domain -> the slug of the tenant it was verified for (a pending domain is nobody's). */
  domainOwners: () => `${P}{domains}:owners`,
  /** ZSET (all scores 0) of every verified domain, labels reversed (com.example.mail): its subdomains by ZRANGEBYLEX. */
  domainNames: () => `${P}{domains}:names`,
  /** HASH of one tenant's claimed domains: domain -> JSON (status pending|verified, token, added_at, verified_at). */
  tenantDomains: (slug: string) => `${P}{domains}:tenant:${slug}`,
  // ---- end of sender domains ----

  /** HASH domain (or .domain for subdomains) -> host:port. */
  routes: () => `${P}routes`,

  /** HASH of one domain's DKIM keys (lib/dkim.ts): active, pending, retiring (selectors), retiring_until (ms),
   *  key:<selector> -> JSON (private_key PEM, public_key, created_at). Secret: private keys. */
  dkim: (domain: string) => `${P}dkim:${domain}`,

  /** AUTH attempts counted per client (IPv4 address or IPv6 /64), one fixed window each. */
  authFailIp: (ip: string) => `${P}authfail:ip:${ip}`,
  /** AUTH attempts counted per login (every client's), hash-tagged by the login like the two keys below. */
  authFailUser: (user: string) => `${P}authfail:{${user}}:user`,
  /** AUTH attempts counted per (login, client) pair; a success clears it. */
  authFailPair: (user: string, client: string) => `${P}authfail:{${user}}:pair:${client}`,
  /** AUTH attempts of one (login, client) pair still being verified (short-lived). */
  authBusy: (user: string, client: string) => `${P}authfail:{${user}}:busy:${client}`,

  // ---- Panel sessions (lib/sessions.ts) ----
  /** JSON of one panel session, by the SHA-256 of its cookie value (the cookie itself is never stored); expires. */
  // Both tagged {sessions}: one MULTI stores (or ends) a session and indexes it, also on a Redis Cluster.
  session: (idHash: string) => `${P}{sessions}:${idHash}`,
  /** SET of the session hashes of one subject (`tenant:<slug>`, `operator:<name>`), to end them all at once. */
  sessionsOf: (subject: string) => `${P}{sessions}:of:${subject}`,
}

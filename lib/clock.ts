// The service clock. POSTA_CLOCK_OFFSET_MS shifts it (tests and rehearsals: "what would rotation do at 18:00?");
// unset in production.
export function clockOffsetMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.POSTA_CLOCK_OFFSET_MS ?? 0)
  return Number.isFinite(v) ? v : 0
}

export function now(): Date {
  return new Date(Date.now() + clockOffsetMs())
}

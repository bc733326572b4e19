// Waits for a condition that another side of a socket makes true, polling on
// timers; the generous bound only catches a hang, never a slow machine.
export async function until (condition: () => boolean, what = 'condition', timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

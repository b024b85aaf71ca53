/**
 * Splits `trials` as evenly as it can over `lanes` lanes run side by side, and gathers what
 * each lane measured. A lane left with no trials is not started.
 */
export async function runInLanes(trials: number, lanes: number, runLane: (lane: number, count: number) => Promise<number[]>): Promise<number[]> {
  const perLane = Math.ceil(trials / lanes);
  const counts = Array.from({ length: lanes }, (_, lane) => Math.min(perLane, trials - lane * perLane));
  const measured = await Promise.all(counts.map((count, lane) => (count > 0 ? runLane(lane, count) : [])));
  return measured.flat();
}

/** Why a Kubernetes API call failed; the message says what is missing and how to fix it. */
export class KubernetesError extends Error {
  /** The HTTP status, when the API server answered. */
  readonly status: number | undefined;
  /** The messages of the Status body's details.causes (a 429 eviction names its PodDisruptionBudget there). */
  readonly causes: string[];
  constructor(message: string, status?: number, causes: string[] = []) {
    super(message);
    this.name = 'KubernetesError';
    this.status = status;
    this.causes = causes;
  }
}

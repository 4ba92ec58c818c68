/** Thrown inside the layout planner to stop at the first reason to refuse; planDiskLayout turns it into `{ refused }`. */
export class Refusal extends Error {}

export function refuse(message: string): never {
  throw new Refusal(message);
}

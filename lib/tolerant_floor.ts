/**
 * floor() for counts computed as a fraction times a size (K-Winners' k, RigL's drop count).
 * @module
 */

/**
 * floor(v), forgiving the float noise of the products that compute a count, such as
 * (1 − 0.9)·10 = 0.9999999999999998 or 0.225·120 = 26.999999999999996: a few units in the last
 * place of v, not a fraction of a unit (1098900.999 floors to 1098900).
 */
export function floorTolerant(v: number): number {
  return Math.floor(v + 8 * Number.EPSILON * Math.max(1, Math.abs(v)));
}

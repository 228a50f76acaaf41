// The fractional hexadecimal digits of pi, computed rather than pasted: Blowfish's initial
// P-array and S-boxes are defined as these digits (0x243F6A88, 0x85A308D3, ...).

const GUARD_BITS = 64n;

/** Returns arctan(1/x) scaled by 2^bits, by its alternating Taylor series. */
function arctanInverse(x: bigint, bits: bigint): bigint {
  const xSquared = x * x;
  let power = (1n << bits) / x;
  let sum = power;
  let sign = -1n;
  for (let k = 3n; power !== 0n; k += 2n) {
    power /= xSquared;
    sum += (sign * power) / k;
    sign = -sign;
  }
  return sum;
}

/** Returns the first `count` 32-bit words of the fractional part of pi in hexadecimal (Machin's formula). */
export function piHexWords(count: number): Uint32Array {
  const bits = BigInt(count * 32) + GUARD_BITS;
  // why: Machin's formula pi = 16 atan(1/5) - 4 atan(1/239) converges fast and needs only BigInt.
  const pi = 16n * arctanInverse(5n, bits) - 4n * arctanInverse(239n, bits);
  const fraction = (pi - (3n << bits)) >> GUARD_BITS;
  const hex = fraction.toString(16).padStart(count * 8, '0');
  const words = new Uint32Array(count);
  for (let i = 0; i < count; i++) words[i] = Number.parseInt(hex.slice(i * 8, i * 8 + 8), 16);
  return words;
}

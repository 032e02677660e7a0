// The client keeps the tax service's flow-control waits per seller, for all of its upload lanes: no
// submission goes before the wait the last answer asked for; while the seller is answered with waits
// one submission at a time is out; without waits, submissions overlap freely.
import { describe, expect, it } from 'vitest';
import { FlowGate } from '../../src/upstream/flow-gate.js';

function flowGate() {
  let now = 1_000_000;
  return { gate: new FlowGate(() => now), advance: (ms: number) => (now += ms) };
}

describe('flow control kept by the client', () => {
  it('lets submissions overlap while the tax service asks for no wait', () => {
    const { gate } = flowGate();
    expect([gate.enter('A'), gate.enter('A'), gate.enter('A')]).toEqual([0, 0, 0]);
    gate.leave('A', 0);
    expect(gate.enter('A')).toBe(0);
  });

  it('holds every submission of the seller until the wait its last answer asked for is over', () => {
    const { gate, advance } = flowGate();
    expect(gate.enter('A')).toBe(0);
    gate.leave('A', 2);
    expect(gate.enter('A')).toBe(2_000);
    advance(1_500);
    expect(gate.enter('A')).toBe(500);
    advance(500);
    expect(gate.enter('A')).toBe(0);
  });

  it('keeps each seller\'s wait apart', () => {
    const { gate } = flowGate();
    gate.enter('A');
    gate.leave('A', 2);
    expect(gate.enter('B')).toBe(0);
  });

  it('lets one submission out at a time while the seller is answered with waits', () => {
    const { gate, advance } = flowGate();
    gate.enter('A');
    gate.leave('A', 1);
    advance(1_000);
    expect(gate.enter('A')).toBe(0);
    expect(gate.enter('A')).toBe(1_000); // it would arrive before the wait the first one's answer sets
    gate.leave('A', 0); // the tax service stopped asking for waits
    expect([gate.enter('A'), gate.enter('A')]).toEqual([0, 0]);
  });

  it('holds a submission back for at least a second while another is out, however short the waits', () => {
    const { gate, advance } = flowGate();
    gate.enter('A');
    gate.leave('A', 0.05);
    advance(50);
    expect(gate.enter('A')).toBe(0);
    expect(gate.enter('A')).toBe(1_000);
  });

  it('takes the wait of a refusal for coming too early (its Retry-After), and keeps the wait when no answer came', () => {
    const { gate, advance } = flowGate();
    gate.enter('A');
    gate.leave('A', 3); // 429, Retry-After: 3
    advance(3_000);
    gate.enter('A');
    gate.leave('A', undefined); // a timeout: nobody knows what the tax service decided
    expect(gate.enter('A')).toBe(0);
    expect(gate.enter('A')).toBe(3_000); // still answered with waits, as far as we know
  });
});

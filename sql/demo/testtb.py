"""The testTB rows as CSV on stdout: 5,000 securities x 242 trading minutes of 2023-01-08
(1,210,000 rows), the same as benches/testtb.rs generates."""
import sys

minutes = [divmod(m, 60) for m in range(9 * 60 + 30, 11 * 60 + 31)]
minutes += [divmod(m, 60) for m in range(13 * 60, 15 * 60 + 1)]
assert len(minutes) == 242, len(minutes)
out = sys.stdout
for s in range(5000):
    base = 10.0 + s % 97
    for i, (h, m) in enumerate(minutes):
        wiggle = ((s * 31 + i * 17) % 100) / 100.0
        o = base + wiggle
        vol = 100 + (s + i) % 1000
        out.write(
            f"{s + 1:06},2023-01-08 {h:02}:{m:02}:00,{base:.2f},{o:.2f},{o + 0.5:.2f},"
            f"{o - 0.5:.2f},{o + 0.1:.2f},{vol},{(o + 0.1) * vol:.2f}\n"
        )

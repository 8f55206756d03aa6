"""Print the README's Nth ```bash block (0-based), so `.ci/run` runs the README's commands verbatim."""

import re
import sys
from pathlib import Path

readme = Path(__file__).resolve().parent.parent / "README.md"
blocks = re.findall(r"```bash\n(.*?)\n```", readme.read_text(encoding="utf-8"), re.S)
print(blocks[int(sys.argv[1])])

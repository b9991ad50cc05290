"""The bare `openai` SDK (AsyncOpenAI.chat.completions.create) sending the same requests as the benchmark's
`prefkit generate` run, for a side-by-side CPU figure; prints {"requests", "seconds"} as JSON.

    python benchmarks/sdk_client.py URL COUNT CONCURRENCY
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from openai import AsyncOpenAI


async def main(url: str, count: int, concurrency: int) -> None:
    client = AsyncOpenAI(base_url=url, api_key="bench", max_retries=0)
    slots = asyncio.Semaphore(concurrency)

    async def one(number: int) -> None:
        messages = [
            {"role": "system", "content": "Answer questions about the table with SQL."},
            {"role": "user", "content": f"Question {number}: how many rows have id above {number}?"},
        ]
        async with slots:
            await client.chat.completions.create(model="teacher-model", messages=messages, temperature=0.7)

    started = time.perf_counter()
    await asyncio.gather(*(one(number) for number in range(count)))
    print(json.dumps({"requests": count, "seconds": time.perf_counter() - started}))
    await client.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))

async def process(ctx, msg, cfg, snapshot):
    # The async twin of call_api.py: one call through the async ctx.http, on the event loop.
    answer = await ctx.http.get(f"{cfg['apiUrl']}/items/{msg.body['seq']}", timeout=30)
    answer.raise_for_status()
    return {"body": {**msg.body, "answer": answer.json()}, "headers": {}}

async def process(ctx, msg, cfg, snapshot):
    return {"body": msg.body, "headers": {}}

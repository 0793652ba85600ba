# The FastAPI peer of docupod's GET /api/me for the chat benchmark: `async def`, the same JWT check (PyJWT, HS256
# only, issuer and audience "docupod", typ "access", a subject), 401 otherwise, and the same JSON body. The user is
# looked up in memory (BENCH_ME: docupod's own /api/me answer), where docupod reads its database.
# Run: BENCH_JWT_SECRET=… BENCH_ME='{…}' /usr/bin/python3 -m uvicorn --app-dir bench/chat fastapi_app:app --workers 1
import json
import os

import jwt
from fastapi import FastAPI, Header, HTTPException

SECRET = os.environ["BENCH_JWT_SECRET"]
ME = json.loads(os.environ["BENCH_ME"])
USERS = {ME["user"]["id"]: ME}

app = FastAPI()


@app.get("/api/me")
async def me(authorization: str | None = Header(default=None)):
    if not authorization or not authorization.lower().startswith("bearer "):
        raise HTTPException(status_code=401, detail="authentication required", headers={"WWW-Authenticate": 'Bearer realm="docupod"'})
    try:
        claims = jwt.decode(authorization[7:].strip(), SECRET, algorithms=["HS256"], issuer="docupod", audience="docupod")
    except jwt.PyJWTError:
        raise HTTPException(status_code=401, detail="invalid or expired access token")
    if claims.get("typ") != "access" or not isinstance(claims.get("sub"), str):
        raise HTTPException(status_code=401, detail="invalid or expired access token")
    found = USERS.get(claims["sub"])
    if found is None:
        raise HTTPException(status_code=401, detail="the account no longer exists")
    return found


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}

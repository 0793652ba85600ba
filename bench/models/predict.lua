-- wrk script: POST /predict with a JSON body, cycling through a few realistic texts (the same for both servers).
-- Usage: wrk -s bench/models/predict.lua http://127.0.0.1:PORT/path/to/predict
local texts = {
  "hey there, good morning",
  "i forgot my pasword again",
  "where do I find the expense policy",
  "please let me talk to a real human",
  "I was billed twice for my subscription",
  "how do I upload a new document to the workspace",
  "thanks, that solved it",
  "can you reset my login credentials",
}
local bodies = {}
for i, t in ipairs(texts) do
  bodies[i] = '{"text": "' .. t .. '"}'
end
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, bodies[(n % #bodies) + 1])
end
-- No response() callback: it makes wrk parse every answer and slows the client; wrk reports non-2xx itself.

-- Asks for a run now: the operator runs a task whenever usersync.io/run-now gets a new value.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
local now = os.date("!%Y-%m-%dT%XZ")
if obj.metadata.annotations["usersync.io/run-now"] == now then
  -- A second click within the same second still needs a value of its own.
  now = now .. "+1"
end
obj.metadata.annotations["usersync.io/run-now"] = now
return obj

-- Lets one run remove more than maxDeletions allows: a new usersync.io/approve-deletions value is
-- used by the run it starts. run-now is set too: status.lastHandledRunNow then records the action.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
local now = os.date("!%Y-%m-%dT%XZ")
for _, key in ipairs({"usersync.io/approve-deletions", "usersync.io/run-now"}) do
  local value = now
  if obj.metadata.annotations[key] == now then
    value = now .. "+1"
  end
  obj.metadata.annotations[key] = value
end
return obj

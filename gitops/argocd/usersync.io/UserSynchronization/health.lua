-- Argo CD health of a usersync.io UserSynchronization, read from its kstatus conditions.
-- Written for argocd-cm, where scripts run without Lua's standard libraries: no string functions.
local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

-- "Reason: message", or whichever of the two is there.
local function explain(c)
  local reason = c.reason or ""
  local message = c.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  if message ~= "" then
    return message
  end
  return reason
end

local hs = {}
local status = obj.status
local generation = obj.metadata.generation
if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to pick up the task"
  return hs
end
if generation ~= nil and status.observedGeneration < generation then
  -- What status says is about an older spec; the operator has yet to act on this one.
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
    .. " (status is of generation " .. status.observedGeneration .. ")"
  return hs
end

local ready = condition(status, "Ready")
if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "spec.suspend is true: no runs"
  local reconciling = condition(status, "Reconciling")
  if reconciling ~= nil and reconciling.reason == "Suspended" then
    hs.message = "Suspended: the task is suspended"
  end
  return hs
end

local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  -- A permanent failure or the deletion brake: nothing happens until someone acts.
  hs.status = "Degraded"
  hs.message = explain(stalled)
  return hs
end

local reconciling = condition(status, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = explain(reconciling)
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end
if ready ~= nil and ready.status == "False" then
  -- A transient failure too: the operator retries, and the task is unhealthy until it recovers.
  hs.status = "Degraded"
  hs.message = explain(ready)
  return hs
end

if ready == nil and status.lastSyncTime == nil and obj.spec ~= nil and obj.spec.runOnCreate == false then
  -- runOnCreate: false; the first run waits for the schedule, as asked.
  hs.status = "Healthy"
  hs.message = "Waiting for the first scheduled run"
  if status.nextSyncTime ~= nil then
    hs.message = hs.message .. " at " .. status.nextSyncTime
  end
  return hs
end

hs.status = "Progressing"
hs.message = "Waiting for the first run"
if ready ~= nil then
  hs.message = explain(ready)
end
return hs

-- Actions on a UserSynchronization. Both set annotations only, so they never fight the spec Argo CD
-- syncs from Git.
local actions = {}
local suspended = obj.spec ~= nil and obj.spec.suspend == true
local braked = false
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Stalled" and c.status == "True" and c.reason == "DeletionThresholdExceeded" then
      braked = true
    end
  end
end
-- A suspended task ignores run-now.
actions["run-now"] = {["disabled"] = suspended, ["iconClass"] = "fa fa-fw fa-play"}
-- Only a braked task has removals waiting for approval.
actions["approve-deletions"] = {["disabled"] = not braked, ["iconClass"] = "fa fa-fw fa-check"}
return actions

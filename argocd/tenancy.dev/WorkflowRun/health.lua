-- Argo CD health of a tenancy.dev WorkflowRun (a saga with compensation), from its conditions and phase.
-- Lua 5.1 without the string library (Argo CD's default sandbox): only operators and base functions.
local hs = {}

local function condition(conditions, type_)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function detail(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "terminating"
  return hs
end

local status = obj.status
if status == nil or (status.conditions == nil and status.phase == nil) then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to start the run"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe generation " .. generation
  return hs
end

local stalled = condition(status.conditions, "Stalled")
if (stalled ~= nil and stalled.status == "True") or status.phase == "Failed" or status.phase == "Compensated" then
  hs.status = "Degraded"
  local phase = status.phase
  if phase == nil then
    -- Only Stalled gets here without a phase: the run never started (NotImplemented, or refused).
    phase = "Stalled"
  end
  hs.message = phase .. ": " .. detail(stalled, "the run did not succeed")
  return hs
end

local ready = condition(status.conditions, "Ready")
if (ready ~= nil and ready.status == "True") or status.phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = detail(ready, "succeeded")
  return hs
end

hs.status = "Progressing"
if status.phase == "Compensating" then
  hs.message = "compensating: undoing the steps that completed; " .. detail(ready, "a step failed")
elseif status.phase ~= nil then
  hs.message = status.phase .. ": " .. detail(ready, "running")
else
  hs.message = detail(ready, "running")
end
return hs

-- Argo CD health check for hive.dev/ChaosExperiment.
-- Suspended while paused (spec.pause or status.phase Paused). Otherwise Degraded when the
-- experiment completed with verdict Fail or Ready is False; Healthy only when Ready is True and
-- both it and status.observedGeneration match metadata.generation; Progressing otherwise.

local function condition(obj, conditionType)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

-- "Reason: message" of a condition, or whichever of the two it has.
local function describe(c)
  local reason = c.reason or ""
  local message = c.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  if message ~= "" then
    return message
  end
  if reason ~= "" then
    return reason
  end
  return "Ready is " .. tostring(c.status)
end

-- A message when the status was computed from an older spec than metadata.generation, else nil.
local function stale(obj, ready)
  local generation = obj.metadata.generation
  local seen = obj.status.observedGeneration
  if seen == nil or seen == generation then
    seen = ready.observedGeneration
  end
  if seen == generation then
    return nil
  end
  local message = "Waiting for the operator to observe generation " .. tostring(generation)
  if seen ~= nil then
    message = message .. " (last observed " .. tostring(seen) .. ")"
  end
  return message
end

local hs = {}

-- The probes whose last result failed, as "name (what was seen)".
local function failedProbes(status)
  local failed = {}
  if status.probeResults ~= nil then
    for _, p in ipairs(status.probeResults) do
      if p.passed == false then
        table.insert(failed, tostring(p.name) .. " (" .. tostring(p.message) .. ")")
      end
    end
  end
  return failed
end

if obj.spec ~= nil and obj.spec.pause == true then
  hs.status = "Suspended"
  hs.message = "Experiment is paused (spec.pause: true); every fault is rolled back"
  return hs
end
if obj.status ~= nil and obj.status.phase == "Paused" then
  hs.status = "Suspended"
  hs.message = "Experiment is paused (status.phase: Paused)"
  return hs
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local ready = condition(obj, "Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end

local waiting = stale(obj, ready)
if waiting ~= nil then
  hs.status = "Progressing"
  hs.message = waiting
  return hs
end

if obj.status.phase == "Completed" and obj.status.verdict == "Fail" then
  hs.status = "Degraded"
  hs.message = "Experiment completed with verdict Fail"
  local failed = failedProbes(obj.status)
  if #failed > 0 then
    hs.message = hs.message .. "; failed probes: " .. table.concat(failed, ", ")
  end
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
elseif ready.status == "False" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = describe(ready)
return hs

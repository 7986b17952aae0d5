# SomaAgent's policy, evaluated in-process (regopy) or by an OPA server
# (POST /v1/data/soma/allow). Decision: data.soma.allow; reasons: data.soma.deny.
#
# input: {"tenant": "<tenant id>", "persona_id": "<id>" | null, "action": "...",
#         "resource": "...", "context": {...built by the server, never by clients...}}
# data.tenants["<tenant id>"]: the tenant's policy data (edited by staff in admin):
#   {"version": n,
#    "denied_actions": ["memory.write", ...],
#    "denied_tools": ["web_search", ...],
#    "allowed_tools": ["calculator", ...],        # optional allow-list for tool.execute
#    "approval_tools": ["python", {"tool": "http_fetch", "when_args": {...}}],  # see below
#    "personas": {"<persona id>": {"denied_actions": [...], "denied_tools": [...], "approval_tools": [...]}}}
package soma

import rego.v1

known_actions := {
	"conversation.send",
	"tool.execute",
	"memory.write",
	"attachments.upload",
	"settings.update",
}

default allow := false

allow if count(deny) == 0

ctx := object.get(input, "context", {})

default tenant_data := {}

tenant_data := data.tenants[input.tenant]

default persona_data := {}

persona_data := tenant_data.personas[input.persona_id]

deny contains "unknown_action" if not input.action in known_actions

# The server sends the version of the tenant's data it knows; a policy engine
# holding other data (an OPA server restarted or not yet updated) must not decide.
deny contains "policy_data_stale" if {
	object.get(tenant_data, "version", 0) != object.get(ctx, "policy_version", 0)
}

deny contains "action_denied_for_tenant" if input.action in object.get(tenant_data, "denied_actions", [])

deny contains "action_denied_for_persona" if input.action in object.get(persona_data, "denied_actions", [])

deny contains "tool_denied" if {
	input.action == "tool.execute"
	input.resource in object.get(tenant_data, "denied_tools", [])
}

deny contains "tool_denied" if {
	input.action == "tool.execute"
	input.resource in object.get(persona_data, "denied_tools", [])
}

deny contains "tool_not_allowed" if {
	input.action == "tool.execute"
	allowed := object.get(tenant_data, "allowed_tools", null)
	is_array(allowed)
	not input.resource in allowed
}

# Settings are changed by tenant admins or staff only, whatever the caller claims.
deny contains "settings_need_admin" if {
	input.action == "settings.update"
	not object.get(ctx, "actor_role", "") in {"admin", "staff"}
}

# Tool calls that need a person's approval before they run (docs/approvals.md). An allowed
# tool.execute with a non-empty ``approval`` set waits for the user; its members are the reasons.
# data.tenants[t].approval_tools (and personas[p].approval_tools) list rules: a tool name, "*"
# for every tool, or {"tool": name | "*", "when_args": {arg: value, ...}, "reason": "..."}: the
# rule applies when each named top-level argument equals its value.
call_args := object.get(ctx, "args", {})

approval_rules := array.concat(
	object.get(tenant_data, "approval_tools", []),
	object.get(persona_data, "approval_tools", []),
)

approval contains "tool_needs_approval" if {
	input.action == "tool.execute"
	some rule in approval_rules
	is_string(rule)
	rule in {input.resource, "*"}
}

approval contains reason if {
	input.action == "tool.execute"
	some rule in approval_rules
	is_object(rule)
	object.get(rule, "tool", "") in {input.resource, "*"}
	not args_differ(object.get(rule, "when_args", {}))
	reason := object.get(rule, "reason", "tool_needs_approval")
}

args_differ(when) if {
	some k, v in when
	object.get(call_args, k, null) != v
}

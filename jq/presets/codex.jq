# vibekit-pipe preset "codex": OpenAI Codex CLI's JSON Lines events,
#   codex exec --json "..." | vibekit-pipe --preset codex
#
# Each input line is one event; this program turns it into records:
#   thread.started  the start row; thread_id is the session id
#   turn.started    dropped (no content)
#   item.started, item.updated, item.completed
#                   a stream row per event: kind is the item type
#                   (agent_message, reasoning, command_execution, file_change,
#                   mcp_tool_call, web_search, todo_list, error), phase is
#                   started, updated or completed; commands keep command,
#                   exit_code and status; tools are named in "tool"
#   turn.completed  the end row, with the turn's token usage
#   turn.failed     an error row with the error's message
#   error           an error row with the message
#   other           a stream row holding the event, its kind the event type
#
# Codex events other than thread.started carry no thread id: their rows go to
# $session, which vibekit-pipe sets to the last session id a record carried.
# $agent, $mode, $prompt, $sandbox, $repo are the flags, null when not given.

def agent: $agent // "codex";
def row($type; $data; $meta):
  {sessionId: $session, eventType: $type, agentType: agent, streamData: $data, metadata: $meta};

# The text of an item, for streamData.
def item_text:
  if .type == "agent_message" or .type == "reasoning" or .type == "plan" then .text
  elif .type == "command_execution" then
    if .status == "in_progress" then .command else .aggregated_output end
  elif .type == "file_change" then [.changes[]? | "\(.kind) \(.path)"] | join("\n")
  elif .type == "mcp_tool_call" then
    if .error then .error.message
    elif .result then [.result.content[]? | if .type == "text" then .text else tojson end] | join("\n")
    else .arguments | tojson
    end
  elif .type == "web_search" then .query
  elif .type == "todo_list" then [.items[]? | (if .completed then "[x] " else "[ ] " end) + .text] | join("\n")
  elif .type == "error" then .message
  else tojson
  end;

# What an item's metadata says besides its kind and phase. (Objects are
# built field by field: with_entries would cost more than the rest.)
def item_meta:
  if .type == "command_execution" then
    {tool: "command_execution", command, status} + (if .exit_code != null then {exit_code} else {} end)
  elif .type == "file_change" then {tool: "file_change", changes, status}
  elif .type == "mcp_tool_call" then {tool, server, status} + (if .error then {error: .error.message} else {} end)
  elif .type == "web_search" then {tool: "web_search", query}
  elif .status then {status}
  else {}
  end;

if .type == "thread.started" then
  {sessionId: .thread_id, eventType: "start", agentType: agent, prompt: $prompt,
   metadata: {kind: "thread.started", thread_id}}

elif .type == "turn.started" then
  empty

elif .type == "turn.completed" then
  row("end"; null; {kind: "turn.completed", status: "success", usage})

elif .type == "turn.failed" then
  row("error"; .error.message; {kind: "turn.failed", status: "failed"})

elif .type == "error" then
  row("error"; .message; {kind: "error", status: "error"})

elif (.type | type) == "string" and (.type | startswith("item.")) and (.item | type) == "object" then
  (.type | ltrimstr("item.")) as $phase
  | .item
  | row("stream"; item_text; {kind: .type, phase: $phase, item_id: .id} + item_meta)

else
  row("stream"; tojson; {kind: .type})
end

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
#                   exit_code and status; tools are named in "tool". An error
#                   item is a warning (model metadata not found, say): a
#                   stream row, the run goes on
#   turn.completed  the end row, with its usage (the thread's running total)
#   turn.failed     the error row, with the error's message
#   error           a stream row of kind error: Codex prints one for a retry
#                   notice, and one before turn.failed with the same message,
#                   so that one failure gives one error row (turn.failed's)
#   other           a stream row holding the event, its kind the event type
#
# Codex before the thread.* events (0.39 and older) wrote {"id","msg":{...}}
# events with no session id (their rows go to --session), after a config
# line (model, provider, workdir: a stream row of kind config) and a
# {"prompt"} line (a stream row of kind prompt, with the prompt):
#   task_started, exec_command_output_delta   dropped
#   agent_message, agent_reasoning            stream rows (agent_message, reasoning)
#   exec_command_begin/end, patch_apply_begin/end, mcp_tool_call_begin/end,
#   web_search_begin/end                      stream rows as the items above
#                                             (phase started or completed)
#   token_count     a stream row with the thread's running total
#   task_complete   the end row; error: the error row; turn_aborted: an error row
#   other msg       a stream row holding the msg, its kind the msg type
#
# It reads Codex's transcripts too (~/.codex/sessions/YYYY/MM/DD/
# rollout-*.jsonl, both formats): session_meta names the session (payload.id)
# for the lines after it; every line's own timestamp is its row's time;
# turn_context (the model) and response_items (message, reasoning,
# function_call with the tool's name, function_call_output) are stream rows;
# event_msg token_count carries the running total; task_complete with an
# error is an error row; event_msg lines that repeat a response_item (user
# and agent messages), world_state and token_usage_record (per response: the
# token_count totals cover them) are dropped.
#
# Usage, for `vibekit telemetry usage`, goes in metadata.tokens (see the usage
# package): turn.completed (the end row) and every token_count carry the
# thread's running total (Codex prints the thread's total after a resume, not
# the turn's), scope "thread", grows: the total never goes down, so a stream
# and a transcript of the same thread count once, and each resume counts its
# increase. Codex counts cached tokens in input_tokens: input is
# input_tokens - cached_input_tokens, cacheRead cached_input_tokens,
# cacheCreation cache_write_input_tokens, output output_tokens (reasoning
# included), reasoning reasoning_output_tokens. The model is the session's
# own (turn_context, the config line); `exec --json` names none, so a stream
# alone is unpriced, and priced by its rollout's model when the rollout is
# read too (its lines come first in time: Codex writes them before it prints).
#
# Codex events other than thread.started carry no thread id: their rows go to
# $session, which vibekit-pipe sets to the last session id a record carried.
# $agent, $mode, $prompt, $sandbox, $repo are the flags, null when not given.

def agent: $agent // "codex";
def row($type; $data; $meta):
  {sessionId: $session, eventType: $type, agentType: agent, streamData: $data, metadata: $meta};

# A token usage object as metadata.tokens: the thread's running total.
def thread_tokens:
  if type == "object" then
    {input: ((.input_tokens // 0) - (.cached_input_tokens // 0)), cacheRead: .cached_input_tokens,
     cacheCreation: .cache_write_input_tokens, output: .output_tokens,
     reasoning: .reasoning_output_tokens, scope: "thread", grows: true}
    | with_entries(select(.value != null))
  else null
  end;

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

def command_text: if type == "array" then join(" ") else . end;

# An older {"id","msg"} event (also a rollout's event_msg payload).
def old_event:
  .msg as $m
  | $m.type as $t
  | if $t == "task_started" or $t == "exec_command_output_delta" then empty
    elif $t == "agent_message" then row("stream"; $m.message; {kind: "agent_message"})
    elif $t == "agent_reasoning" then row("stream"; $m.text; {kind: "reasoning"})
    elif $t == "exec_command_begin" then
      row("stream"; $m.command | command_text;
          {kind: "command_execution", phase: "started", tool: "command_execution", command: ($m.command | command_text),
           status: "in_progress", tool_use_id: $m.call_id})
    elif $t == "exec_command_end" then
      row("stream"; $m.aggregated_output // $m.stdout;
          {kind: "command_execution", phase: "completed", tool: "command_execution", tool_use_id: $m.call_id,
           status: (if $m.exit_code == 0 then "completed" else "failed" end), exit_code: $m.exit_code})
    elif $t == "patch_apply_begin" then
      row("stream"; [$m.changes | objects | keys[]] | join("\n");
          {kind: "file_change", phase: "started", tool: "file_change", tool_use_id: $m.call_id, status: "in_progress"})
    elif $t == "patch_apply_end" then
      row("stream"; $m.stdout // $m.stderr;
          {kind: "file_change", phase: "completed", tool: "file_change", tool_use_id: $m.call_id,
           status: (if $m.success == false then "failed" else "completed" end)})
    elif $t == "mcp_tool_call_begin" then
      row("stream"; $m.invocation.arguments | tojson;
          {kind: "mcp_tool_call", phase: "started", tool: $m.invocation.tool, server: $m.invocation.server,
           tool_use_id: $m.call_id, status: "in_progress"})
    elif $t == "mcp_tool_call_end" then
      (($m.result | objects | has("Err")) or $m.result.Ok.isError == true) as $failed
      | row("stream"; $m.result | tojson;
            {kind: "mcp_tool_call", phase: "completed", tool: $m.invocation.tool, server: $m.invocation.server,
             tool_use_id: $m.call_id, status: (if $failed then "failed" else "completed" end)})
    elif $t == "web_search_begin" then
      row("stream"; $m.query; {kind: "web_search", phase: "started", tool_use_id: $m.call_id})
    elif $t == "web_search_end" then
      row("stream"; $m.query; {kind: "web_search", phase: "completed", tool: "web_search", query: $m.query, tool_use_id: $m.call_id})
    elif $t == "token_count" then
      ($m.info.total_token_usage | thread_tokens) as $tokens
      | if $tokens then row("stream"; null; {kind: "token_count", tokens: $tokens}) else empty end
    elif $t == "task_complete" then
      if $m.error then row("error"; $m.error.message; {kind: "task_complete", status: "failed"})
      else row("end"; $m.last_agent_message; {kind: "task_complete", status: "success"})
      end
    elif $t == "error" then row("error"; $m.message; {kind: "error", status: "error"})
    elif $t == "turn_aborted" then row("error"; $m.reason; {kind: "turn_aborted", status: "aborted"})
    else row("stream"; $m | tojson; {kind: $t})
    end;

# The text of a rollout's response_item message.
def content_text:
  if type == "array" then [.[] | .text // (.content | tostring)] | join("\n")
  elif type == "string" then .
  else null
  end;

# A rollout line (session_meta, turn_context, response_item, event_msg, ...).
def rollout:
  .payload as $p
  | (if .type == "session_meta" then $p.id // $session else $session end) as $sid
  | def rrow($type; $data; $meta): row($type; $data; $meta) + {sessionId: $sid};
  if .type == "session_meta" then
    rrow("stream"; null; {kind: "session_meta", cwd: $p.cwd, originator: $p.originator, cli_version: $p.cli_version,
                          source: $p.source, model_provider: $p.model_provider} | with_entries(select(.value != null)))
  elif .type == "turn_context" then
    rrow("stream"; null; {kind: "turn_context", model: $p.model, cwd: $p.cwd} | with_entries(select(.value != null)))
  elif .type == "response_item" then
    if $p.type == "message" then rrow("stream"; $p.content | content_text; {kind: "message", role: $p.role})
    elif $p.type == "reasoning" then rrow("stream"; [$p.summary[]?.text] | join("\n"); {kind: "reasoning"})
    elif $p.type == "function_call" or $p.type == "custom_tool_call" then
      rrow("stream"; $p.arguments // $p.input; {kind: $p.type, tool: $p.name, tool_use_id: $p.call_id})
    elif $p.type == "function_call_output" or $p.type == "custom_tool_call_output" then
      rrow("stream"; $p.output | if type == "string" then . else tojson end; {kind: $p.type, tool_use_id: $p.call_id})
    else rrow("stream"; $p | tojson; {kind: ($p.type // "response_item")})
    end
  elif .type == "event_msg" then
    if $p.type == "user_message" or $p.type == "agent_message" or $p.type == "agent_reasoning"
       or $p.type == "thread_settings_applied"
       or ($p.type == "item_completed" and ($p.item.type == "UserMessage" or $p.item.type == "AgentMessage")) then empty
    elif $p.type == "task_complete" then
      if $p.error then rrow("error"; $p.error.message; {kind: "task_complete", status: "failed"})
      else rrow("stream"; $p.last_agent_message; {kind: "task_complete", duration_ms: $p.duration_ms})
      end
    elif $p.type == "item_completed" then
      $p.item as $i
      | rrow("stream"; $i.aggregated_output // ($i | tojson);
             {kind: ($i.type // "item_completed"), phase: "completed", tool_use_id: $i.id, status: $i.status, exit_code: $i.exit_code}
             | with_entries(select(.value != null)))
    else {msg: $p} | old_event | .sessionId = $sid
    end
  elif .type == "world_state" or .type == "token_usage_record" then empty
  else rrow("stream"; $p | tojson; {kind: .type})
  end;

if (.type | type) == "string" and (.payload | type) == "object" and (.timestamp | type) == "string" then
  rollout + {timestamp}

elif .type == "thread.started" then
  {sessionId: .thread_id, eventType: "start", agentType: agent, prompt: $prompt,
   metadata: {kind: "thread.started", thread_id}}

elif .type == "turn.started" then
  empty

elif .type == "turn.completed" then
  row("end"; null; {kind: "turn.completed", status: "success", usage, tokens: (.usage | thread_tokens)})

elif .type == "turn.failed" then
  row("error"; .error.message; {kind: "turn.failed", status: "failed"})

elif .type == "error" then
  row("stream"; .message; {kind: "error"})

elif (.type | type) == "string" and (.type | startswith("item.")) and (.item | type) == "object" then
  (.type | ltrimstr("item.")) as $phase
  | .item
  | row("stream"; item_text; {kind: .type, phase: $phase, item_id: .id} + item_meta)

elif (.msg | type) == "object" and has("id") then
  old_event

elif has("prompt") and (.type == null) and length == 1 then
  row("stream"; .prompt; {kind: "prompt"}) + {prompt: .prompt}

elif .type == null and (.model | type) == "string" and (has("workdir") or has("provider")) then
  row("stream"; null; {kind: "config", model, provider, workdir, approval, sandbox} | with_entries(select(.value != null)))

else
  row("stream"; tojson; {kind: .type})
end

# vibekit-pipe preset "claude": Claude Code's stream-json output,
#   claude -p "..." --output-format stream-json --verbose | vibekit-pipe --preset claude
#
# Each input line is one message; this program turns it into records:
#   system/init   the start row: session_id, model, cwd, tools, MCP servers
#   assistant     one stream row per content block: text, tool_use (names the
#                 tool; streamData is its input as JSON), thinking
#   user          one stream row per tool_result (vibekit-pipe names its tool
#                 from the tool_use with the same tool_use_id); a user text
#                 message is a "user" row whose prompt the start row takes
#                 when --prompt was not given
#   result        the end row: status, duration_ms, duration_api_ms,
#                 num_turns, total_cost_usd, usage, modelUsage; an error row
#                 instead when the run failed (is_error, or an error_* subtype)
#   stream_event  dropped: partial deltas (--include-partial-messages); the
#                 whole message follows them
#   other         a stream row holding the message, its kind the message type
#
# Variables: $session is the current session id (the last one a record
# carried, --session before any); $agent, $mode, $prompt, $sandbox, $repo are
# the flags, null when not given. Fields a record leaves out take the current
# session's values; metadata keys keep the format's own names.

def agent: $agent // "claude";
def drop_nulls: with_entries(select(.value != null));
# A tool_result's content: a string, or a list of content blocks.
def content_text:
  if type == "string" then .
  elif type == "array" then [.[] | if .type == "text" then .text else tojson end] | join("\n")
  elif . == null then null
  else tojson end;

(.session_id // $session) as $sid
| (if .parent_tool_use_id then {parent_tool_use_id} else null end) as $parent
# Metadata every row of the message carries: its parent tool use (a
# subagent's message) and an assistant message's error. Usually none.
| ($parent + (if .type == "assistant" and .error then {error} else null end)) as $extra
| def row($type; $data; $meta):
    {sessionId: $sid, eventType: $type, agentType: agent, streamData: $data,
     metadata: (if $extra then $meta + $extra else $meta end)};

if .type == "system" and .subtype == "init" then
  {sessionId: $sid, eventType: "start", agentType: agent, prompt: $prompt,
   metadata: ({kind: "init", model, cwd, permissionMode, tools, mcp_servers, claude_code_version} | drop_nulls)}

elif .type == "assistant" then
  .message.content[]?
  | if .type == "text" then row("stream"; .text; {kind: "text"})
    elif .type == "tool_use" then row("stream"; .input | tojson; {kind: "tool_use", tool: .name, tool_use_id: .id})
    elif .type == "thinking" then row("stream"; .thinking; {kind: "thinking"})
    else row("stream"; tojson; {kind: .type})
    end

elif .type == "user" then
  .message.content as $content
  | if ($content | type) == "string" then
      row("stream"; $content; {kind: "user"}) + (if $parent then {} else {prompt: $content} end)
    else
      $content[]?
      | if .type == "tool_result" then
          row("stream"; .content | content_text; {kind: "tool_result", tool_use_id, is_error: (.is_error // false)})
        elif .type == "text" then
          row("stream"; .text; {kind: "user"}) + (if $parent then {} else {prompt: .text} end)
        else row("stream"; tojson; {kind: .type})
        end
    end

elif .type == "result" then
  (.is_error == true or .subtype != "success") as $failed
  | ({status: (if $failed then (if .subtype == "success" then "error" else .subtype end) else "success" end),
      duration_ms, duration_api_ms, num_turns, total_cost_usd, usage, modelUsage} | drop_nulls)
    + (if (.permission_denials | length) > 0 then {permission_denials} else {} end)
    + (if (.errors | length) > 0 then {errors} else {} end)
    as $meta
  | if $failed then
      row("error"; (if .result then .result elif (.errors | length) > 0 then .errors | map(tostring) | join("\n") else .subtype end); $meta)
    else
      row("end"; .result; $meta)
    end

elif .type == "stream_event" then
  empty

else
  row("stream"; tojson; {kind: .type} + ({subtype} | drop_nulls))
end

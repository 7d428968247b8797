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
# It reads Claude Code's transcripts too (~/.claude/projects/*/*.jsonl, one
# line per content block): their lines name the session as sessionId and
# carry their own timestamp, which the rows take.
#
# Usage, for `vibekit telemetry usage`, goes in metadata.tokens (see the usage
# package): the end row of a result carries modelUsage, a running total of
# this process ($run) with the agent's own cost per model; the first row of a
# transcript's assistant line carries that API call's usage, keyed by its
# message id and request id, so the lines that repeat it count once. A stream
# assistant message's usage is not final (it is the usage when the message
# started), so only the result's totals count for a live stream.
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

# A model name without Claude Code's context-window suffix ("[1m]").
def model_name: if type == "string" and endswith("]") then sub("\\[[^\\]]*\\]$"; "") else . end;
# The usage of one API call (a transcript's assistant line).
def call_tokens:
  .message.usage as $u
  | {model: .message.model, input: $u.input_tokens, output: $u.output_tokens,
     cacheCreation: $u.cache_creation_input_tokens, cacheRead: $u.cache_read_input_tokens,
     key: "\(.message.id):\(.requestId)", project: .cwd};
# A result's running totals, per model, with the agent's own cost.
def result_tokens:
  if (.modelUsage | type) == "object" and (.modelUsage | length) > 0 then
    .uuid as $uuid
    | [.modelUsage | to_entries[]
       | {model: (.key | model_name), input: .value.inputTokens, output: .value.outputTokens,
          cacheCreation: .value.cacheCreationInputTokens, cacheRead: .value.cacheReadInputTokens,
          costUSD: .value.costUSD, scope: "\($run):\(.key)"}
         + (if $uuid then {key: "\($uuid):\(.key)"} else {} end)]
  elif (.usage | type) == "object" then
    [{model: null, input: .usage.input_tokens, output: .usage.output_tokens,
      cacheCreation: .usage.cache_creation_input_tokens, cacheRead: .usage.cache_read_input_tokens,
      costUSD: .total_cost_usd, scope: $run} + (if .uuid then {key: .uuid} else {} end)]
  else null
  end;

(.session_id // .sessionId // $session) as $sid
| (if .parent_tool_use_id then {parent_tool_use_id} else null end) as $parent
# Metadata every row of the message carries: its parent tool use (a
# subagent's message) and an assistant message's error. Usually none.
| ($parent + (if .type == "assistant" and .error then {error} else null end)) as $extra
# A transcript line's own time.
| (if (.timestamp | type) == "string" then {timestamp} else {} end) as $time
| def row($type; $data; $meta):
    {sessionId: $sid, eventType: $type, agentType: agent, streamData: $data,
     metadata: (if $extra then $meta + $extra else $meta end)} + $time;

if .type == "system" and .subtype == "init" then
  {sessionId: $sid, eventType: "start", agentType: agent, prompt: $prompt,
   metadata: ({kind: "init", model, cwd, permissionMode, tools, mcp_servers, claude_code_version} | drop_nulls)}

elif .type == "assistant" then
  (if .message.model then {model: .message.model} else {} end) as $model
  | (if .requestId and (.message.usage | type) == "object" then {tokens: call_tokens} else {} end) as $tokens
  | .message.content as $content
  | if ($content | type) != "array" or ($content | length) == 0 then
      if $tokens != {} then row("stream"; null; {kind: "empty"} + $model + $tokens) else empty end
    else
      range($content | length) as $i
      | (if $i == 0 then $model + $tokens else $model end) as $meta
      | $content[$i]
      | if .type == "text" then row("stream"; .text; {kind: "text"} + $meta)
        elif .type == "tool_use" then row("stream"; .input | tojson; {kind: "tool_use", tool: .name, tool_use_id: .id} + $meta)
        elif .type == "thinking" then row("stream"; .thinking; {kind: "thinking"} + $meta)
        else row("stream"; tojson; {kind: .type} + $meta)
        end
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
  | ({status: (if $failed then
                (if .subtype != "success" then .subtype
                 elif .api_error_status then "api_error_\(.api_error_status)"
                 else "error" end)
              else "success" end),
      duration_ms, duration_api_ms, num_turns, total_cost_usd, usage, modelUsage,
      api_error_status, tokens: result_tokens} | drop_nulls)
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

/*
   PHP webshells seen on government portals: small droppers that run code from
   request input through dynamic calls, callbacks, reflection or names assembled
   from pieces, and uploaders that write request input to disk.
   Every rule needs a PHP opening tag and request input; size limits keep them
   off large, legitimate applications.
*/

private rule GOVSOC_PHP_File
{
    strings:
        $php = "<?php" nocase
        $short = /<\?[ \t\r\n=]/
    condition:
        $php in (0..2048) or $short in (0..2048)
}

private rule GOVSOC_PHP_Request_Input
{
    strings:
        $in1 = "$_POST" nocase
        $in2 = "$_GET" nocase
        $in3 = "$_REQUEST" nocase
        $in4 = "$_COOKIE" nocase
        $in5 = "$_SERVER[\"HTTP_" nocase
        $in6 = "$_SERVER['HTTP_" nocase
        $in7 = "php://input" nocase
        $in8 = "'_POST'" nocase
        $in9 = "\"_POST\"" nocase
        $in10 = "'_GET'" nocase
        $in11 = "getallheaders()" nocase
    condition:
        any of them
}

rule GOVSOC_Webshell_PHP_Dynamic_Call_On_Input
{
    meta:
        description = "PHP calls a function whose name or argument comes straight from request input ($x($_POST[...]) or $_GET[a]($_GET[b]))"
        author = "govsoc"
        severity = "critical"
        mitre_attack = "T1505.003"
    strings:
        $call_var_on_input = /\$[A-Za-z_][A-Za-z0-9_]{0,30}\s*(\[[^\]\n]{1,40}\])?\s*\(\s*@?\$_(POST|GET|REQUEST|COOKIE)\s*\[/ nocase
        $call_input_on_input = /\$_(POST|GET|REQUEST|COOKIE)\s*\[[^\]\n]{1,40}\]\s*\(\s*@?\$_(POST|GET|REQUEST|COOKIE)/ nocase
        // a call on the result of a call: file_get_contents("php".$q)($_GET[2]);
        // casts such as "(int) ($_POST[...])" are written with a space and do not match
        $call_result_on_input = /[A-Za-z0-9_"'\]]\)\(\s*@?\$_(POST|GET|REQUEST|COOKIE)\s*\[/ nocase
    condition:
        GOVSOC_PHP_File and filesize < 200KB and any of them
}

rule GOVSOC_Webshell_PHP_Command_Exec_On_Input
{
    meta:
        description = "PHP passes request input straight to a command or code runner (system($_GET[...]), eval($_POST[...]), backticks): the one-line shell most often dropped on portals"
        author = "govsoc"
        severity = "critical"
        mitre_attack = "T1505.003"
    strings:
        $exec = /\b(system|exec|shell_exec|passthru|popen|proc_open|pcntl_exec|eval|assert)\s*\(\s*@?((base64_decode|stripslashes|trim|urldecode|rawurldecode|str_rot13|gzinflate)\s*\(\s*)?@?\$_(POST|GET|REQUEST|COOKIE|SERVER)\s*\[/ nocase
        // backticks run a shell only in code (after =, echo, print, return or an opening
        // parenthesis); documentation quotes `$_POST['x']` in prose and must not match
        $backtick = /(=|echo|print|return|\()\s*`\s*\$_(POST|GET|REQUEST|COOKIE)\s*\[/ nocase
    condition:
        GOVSOC_PHP_File and filesize < 500KB and any of them
}

rule GOVSOC_Webshell_PHP_Variable_Variables_From_Input
{
    meta:
        description = "PHP copies every request parameter into variables named by the client ($$key = $value) and then calls a variable as a function"
        author = "govsoc"
        severity = "high"
        mitre_attack = "T1505.003"
    strings:
        $loop = /foreach\s*\(\s*\$\$[A-Za-z_][A-Za-z0-9_]*\s+as\s+\$[A-Za-z_][A-Za-z0-9_]*\s*=>/ nocase
        $varvar_assign = /\$\$[A-Za-z_][A-Za-z0-9_]*\s*=\s*\$[A-Za-z_]/
        $reflect = "newInstance" nocase
    condition:
        GOVSOC_PHP_File and filesize < 50KB and GOVSOC_PHP_Request_Input and
        $loop and ($varvar_assign or $reflect)
}

rule GOVSOC_Webshell_PHP_Callback_Runs_Input
{
    meta:
        description = "PHP hands request input to a callback-taking function (call_user_func, array_map, forward_static_call...) with a callback name built at run time"
        author = "govsoc"
        severity = "critical"
        mitre_attack = "T1505.003"
    strings:
        // functions whose first argument is the callback
        $cb_input_first = /(call_user_func(_array)?|forward_static_call(_array)?|array_map|register_shutdown_function|register_tick_function)\s*\(\s*@?\$_(POST|GET|REQUEST|COOKIE|SERVER)/ nocase
        // functions whose second argument is the callback
        $cb_input_second = /(array_filter|array_walk|array_walk_recursive|usort|uasort|uksort|array_reduce|iterator_apply)\s*\(\s*[^,\n]{1,60},\s*@?\$_(POST|GET|REQUEST|COOKIE|SERVER)/ nocase
        $cb_built_name = /(call_user_func(_array)?|forward_static_call(_array)?|register_shutdown_function|register_tick_function)\s*\(\s*\$[A-Za-z_][A-Za-z0-9_]*\s*\.\s*["'][a-z]{1,8}["']\s*,/ nocase
        $cb_input_arg = /(call_user_func(_array)?|forward_static_call(_array)?)\s*\(\s*[^,\n]{1,60},\s*(array\s*\(\s*)?@?\$_(POST|GET|REQUEST|COOKIE)/ nocase
    condition:
        GOVSOC_PHP_File and filesize < 200KB and any of them
}

rule GOVSOC_Webshell_PHP_Split_Function_Name
{
    meta:
        description = "PHP assembles the name of a code-execution function from pieces ('as'.'sert', str_replace junk) and calls it"
        author = "govsoc"
        severity = "high"
        mitre_attack = "T1027, T1505.003"
    strings:
        $s1 = /["']a["']\s*\.\s*["']ssert["']|["']as["']\s*\.\s*["']sert["']|["']ass["']\s*\.\s*["']ert["']|["']asse["']\s*\.\s*["']rt["']|["']asser["']\s*\.\s*["']t["']/ nocase
        $s2 = /["']e["']\s*\.\s*["']val["']|["']ev["']\s*\.\s*["']al["']|["']eva["']\s*\.\s*["']l["']/ nocase
        $s3 = /["']sys["']\s*\.\s*["']tem["']|["']syst["']\s*\.\s*["']em["']|["']sy["']\s*\.\s*["']stem["']/ nocase
        $s4 = /["']base64_["']\s*\.\s*["']decode["']|["']base["']\s*\.\s*["']64_decode["']|["']ba["']\s*\.\s*["']se64_decode["']/ nocase
        $s5 = /["']create_["']\s*\.\s*["']function["']|["']cre["']\s*\.\s*["']ate_function["']/ nocase
        $s6 = /["']shell_["']\s*\.\s*["']exec["']|["']pass["']\s*\.\s*["']thru["']/ nocase
        $junk_replace = /str_replace\s*\(\s*["'][^"'\n]{1,8}["']\s*,\s*["']["']\s*,\s*["'][a-z_0-9]{12,80}["']\s*\)/ nocase
        $junk_call = /"[^"\n]{1,8}"\s*,\s*"",\s*"[a-z_0-9]{12,80}"\s*\)/ nocase
    condition:
        GOVSOC_PHP_File and filesize < 100KB and
        (any of ($s*) or ($junk_replace and #junk_call >= 2))
}

rule GOVSOC_Webshell_PHP_Writes_Input_To_File
{
    meta:
        description = "PHP writes to a file whose path comes from request input (dropper/uploader)"
        author = "govsoc"
        severity = "high"
        mitre_attack = "T1505.003, T1105"
    strings:
        $w1 = /(file_put_contents|fopen)\s*\(\s*@?\$_(POST|GET|REQUEST|COOKIE)\s*\[/ nocase
        $w2 = /(copy|move_uploaded_file)\s*\(\s*\$_FILES\s*\[[^\]]{1,40}\]\s*\[\s*["']tmp_name["']\s*\]\s*,\s*@?\$_(POST|GET|REQUEST|COOKIE)\s*\[/ nocase
    condition:
        GOVSOC_PHP_File and filesize < 200KB and any of them
}

rule GOVSOC_Webshell_PHP_XPath_XSLT_Callback
{
    meta:
        description = "PHP lets an XPath/XSLT expression call PHP functions (registerPHPFunctions, php:function) next to request input"
        author = "govsoc"
        severity = "high"
        mitre_attack = "T1505.003"
    strings:
        $reg = "registerPHPFunctions" nocase
        $fn = /php:function(String)?\s*\(\s*['"]/ nocase
    condition:
        GOVSOC_PHP_File and filesize < 50KB and GOVSOC_PHP_Request_Input and $reg and $fn
}

rule GOVSOC_Webshell_PHP_Packed_Eval
{
    meta:
        description = "PHP evaluates code unpacked from an embedded blob (eval(gzinflate(base64_decode(...))) and similar)"
        author = "govsoc"
        severity = "high"
        mitre_attack = "T1027, T1505.003"
    strings:
        $e1 = /(eval|assert)\s*\(\s*(@?\s*(gzinflate|gzuncompress|gzdecode|str_rot13|base64_decode|strrev|convert_uudecode|hex2bin)\s*\(\s*){2,}/ nocase
        $e2 = /(echo|print)\s*\(?\s*(gzuncompress|gzinflate)\s*\(\s*base64_decode\s*\(\s*['"][A-Za-z0-9+\/=]{2000,}/ nocase
        $e3 = /preg_replace\s*\(\s*['"][\/#|!@~].{0,60}[\/#|!@~][a-df-zA-Z]*e[a-zA-Z]*['"]\s*,\s*['"]?[^,\n]{0,40}\$_(POST|GET|REQUEST|COOKIE)/
    condition:
        GOVSOC_PHP_File and filesize < 1MB and any of them
}

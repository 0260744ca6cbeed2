/*
   ASP, ASP.NET, JSP and ColdFusion webshells: command execution, code loading,
   database and file browsers driven by request parameters, and obfuscated JSP.
*/

rule GOVSOC_Webshell_ASP_Eval_Request
{
    meta:
        description = "Classic ASP evaluates or executes request input (eval request(...), Execute(Request.Form(...)))"
        author = "govsoc"
        severity = "critical"
        mitre_attack = "T1505.003"
    strings:
        $tag = "<%"
        $e1 = /\b(eval|execute|executeglobal)\s*\(?\s*request\s*[\.(\[]/ nocase
        $e2 = /\b(eval|execute|executeglobal)\s*\(?\s*(unescape|decode|base64decode)?\s*\(?\s*request\.(form|querystring|item|cookies)/ nocase
    condition:
        $tag and filesize < 500KB and any of ($e*)
}

rule GOVSOC_Webshell_ASPX_Process_From_Request
{
    meta:
        description = "ASP.NET page starts a process or loads an assembly from request input"
        author = "govsoc"
        severity = "critical"
        mitre_attack = "T1505.003, T1059"
    strings:
        $page1 = "<%@" nocase
        $page2 = "<script runat=\"server\"" nocase
        $req = /Request\s*(\.(Form|QueryString|Params|Item|Headers|Cookies)|\[)/ nocase
        $p1 = "System.Diagnostics.Process" nocase
        $p2 = "ProcessStartInfo" nocase
        $p3 = /Process\.Start\s*\(/ nocase
        $l1 = /Assembly\.Load\s*\(/ nocase
        $l2 = "Convert.FromBase64String" nocase
        $cmd = /["'](cmd\.exe|cmd|\/c|powershell(\.exe)?)["']/ nocase
    condition:
        any of ($page*) and $req and filesize < 500KB and
        ((any of ($p*) and $cmd) or ($l1 and $l2))
}

rule GOVSOC_Webshell_ASPX_SQL_Or_File_Browser
{
    meta:
        description = "ASP.NET page that runs SQL text or walks/deletes files named by request parameters (database and file-system browser shells)"
        author = "govsoc"
        severity = "high"
        mitre_attack = "T1505.003"
    strings:
        $page1 = "<%@" nocase
        $page2 = "runat=\"server\"" nocase
        $req = /Request\s*(\.(Form|QueryString|Params|Item)|\[)/ nocase
        $sql1 = /(SqlConnection|OleDbConnection|OdbcConnection)\s*\(/ nocase
        $sql2 = /(ExecuteReader|ExecuteNonQuery|ExecuteScalar)\s*\(/ nocase
        $sql3 = /\.Fill\s*\(/ nocase
        $conn_input = /(ConnectionString|SqlConnection\s*\()\s*[=(]?\s*[^;\n]{0,40}(Request|txt[A-Za-z]*\.Text|TextBox)/ nocase
        $fs1 = /Directory\.GetFiles\s*\(/ nocase
        $fs2 = /Directory\.GetDirectories\s*\(/ nocase
        $fs3 = /(File\.Delete|File\.Copy|File\.Move|\.SaveAs|File\.WriteAll(Text|Bytes))\s*\(/ nocase
        $fs4 = /Response\.WriteFile\s*\(|TransmitFile\s*\(/ nocase
    condition:
        any of ($page*) and filesize < 500KB and
        (($req or $conn_input) and $conn_input and 2 of ($sql*) or
         $req and $fs1 and $fs2 and ($fs3 or $fs4))
}

rule GOVSOC_Webshell_JSP_Exec_From_Request
{
    meta:
        description = "JSP runs a command or loads class bytes taken from the request"
        author = "govsoc"
        severity = "critical"
        mitre_attack = "T1505.003, T1059"
    strings:
        $jsp1 = "<%" 
        $jsp2 = "<jsp:" nocase
        $req = /request\.(getParameter|getHeader|getInputStream|getReader)\s*\(/
        $x1 = /Runtime\.getRuntime\s*\(\s*\)\s*\.exec\s*\(/
        $x2 = /new\s+ProcessBuilder\s*\(/
        $x3 = "defineClass" 
        $x4 = /ScriptEngineManager\s*\(\s*\)/
        $x5 = "javax.script.ScriptEngine"
    condition:
        any of ($jsp*) and filesize < 500KB and $req and any of ($x*)
}

rule GOVSOC_Webshell_JSP_Encrypted_Class_Loader
{
    meta:
        description = "JSP decrypts request bytes with AES and defines a class from them (Behinder/Godzilla style)"
        author = "govsoc"
        severity = "critical"
        mitre_attack = "T1505.003, T1027"
    strings:
        $jsp = "<%"
        $c1 = "Cipher.getInstance" 
        $c2 = "AES" 
        $l1 = "defineClass"
        $l2 = "ClassLoader"
        $l3 = "newInstance"
        $s1 = "getSession" 
        $s2 = "session.getValue"
        $s3 = "session.putValue"
    condition:
        $jsp and filesize < 200KB and $c1 and $c2 and 2 of ($l*) and any of ($s*)
}

rule GOVSOC_Webshell_JSP_Memory_Or_Tunnel
{
    meta:
        description = "JSP registers a servlet filter, listener or WebSocket endpoint at run time, or relays raw sockets (memory shells and tunnels)"
        author = "govsoc"
        severity = "high"
        mitre_attack = "T1505.003, T1090"
    strings:
        $jsp = "<%"
        $m1 = "StandardContext"
        $m2 = /addFilter(Def|Map)|addApplicationEventListener|addServletMapping(Decoded)?/
        $m3 = /ServerContainer|WsServerContainer/
        $m4 = /addEndpoint\s*\(/
        $t1 = /(SocketChannel\.open|new\s+Socket\s*\()/
        $t2 = "javax.websocket"
        $t3 = /request\.getParameter\s*\(/
    condition:
        $jsp and filesize < 200KB and
        (($m1 and $m2) or ($m3 and $m4) or ($t1 and $t2 and $t3))
}

rule GOVSOC_Webshell_JSP_Unicode_Escaped
{
    meta:
        description = "JSP whose Java code is written as \\uXXXX escapes to hide it from review and scanners"
        author = "govsoc"
        severity = "high"
        mitre_attack = "T1027, T1505.003"
    strings:
        $jsp1 = "<%!"
        $jsp2 = "<%@"
        $jsp3 = "<%="
        $esc = /(\\u00[0-7][0-9a-fA-F]){16}/
    condition:
        any of ($jsp*) and filesize < 500KB and #esc >= 8
}

rule GOVSOC_Webshell_CFM_Execute_Or_SQL
{
    meta:
        description = "ColdFusion page runs a program or SQL text taken from url/form input"
        author = "govsoc"
        severity = "critical"
        mitre_attack = "T1505.003"
    strings:
        $x = "<cfexecute" nocase
        $q = /<cfquery[^>]{0,200}>\s*#(form|url)\.[A-Za-z_]+#/ nocase
        $in = /#(form|url)\.[A-Za-z_]+#|(form|url)\.[A-Za-z_]+/ nocase
        $arg = /(name|arguments)\s*=\s*["']?#(form|url)\./ nocase
    condition:
        filesize < 200KB and (($x and ($arg or $in)) or $q)
}

rule GOVSOC_Webshell_Perl_CGI_Command
{
    meta:
        description = "Perl CGI script that runs shell commands taken from the request (query string, form parameters or POST body)"
        author = "govsoc"
        severity = "high"
        mitre_attack = "T1505.003, T1059"
    strings:
        $perl = /^#!\s*\S*perl/
        $in1 = /\$ENV\s*\{\s*['"]?(QUERY_STRING|CONTENT_LENGTH|REQUEST_METHOD)['"]?\s*\}/
        $in2 = /\bparam\s*\(\s*['"][A-Za-z_]+['"]\s*\)/
        $in3 = /read\s*\(\s*STDIN\s*,/
        $x1 = /\bsystem\s*\(?\s*\$/
        $x2 = /`\$[A-Za-z_][A-Za-z0-9_]{0,30}`/
        $x3 = /\bexec\s*\(?\s*\$/
        $x4 = /\bopen\s*\(?\s*["']?[A-Z_$][A-Za-z_]*["']?\s*,\s*["'][^"'\n]{0,10}\$[A-Za-z_][A-Za-z0-9_]*[^"'\n|]{0,20}\|["']/
        $x5 = /\bqx\s*[\(\{\/]\s*\$/
    condition:
        $perl at 0 and filesize < 300KB and any of ($in*) and any of ($x*)
}

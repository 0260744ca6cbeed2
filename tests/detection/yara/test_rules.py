"""Our own YARA rules (rules/yara): each fires on a positive sample written here
and stays quiet on a benign file of the same kind."""

from __future__ import annotations

import pytest

from detection.yara.scanner import YaraScanner

# rule: (file name, positive sample, benign sample of the same kind)
SAMPLES: dict[str, tuple[str, str, str]] = {
    "GOVSOC_Webshell_PHP_Command_Exec_On_Input": (
        "cmd.php",
        "<?php if(isset($_REQUEST['cmd'])){ echo '<pre>'; system($_REQUEST['cmd']); }?>\n",
        "<?php\n$out = shell_exec('uptime');\n$n = intval($_GET['n'] ?? 1);\n"
        "echo escapeshellarg($_GET['q'] ?? '');\n"),
    "GOVSOC_Webshell_PHP_Dynamic_Call_On_Input": (
        "x.php",
        "<?php\n$f = $_GET['f'];\n$f($_POST['c']);\n",
        "<?php\n$id = (int) ($_POST['id'] ?? 0);\n$fn = 'strtoupper';\necho $fn('ok');\n"),
    "GOVSOC_Webshell_PHP_Variable_Variables_From_Input": (
        "y.php",
        "<?php\nforeach (array('_POST') as $r) {\n  foreach ($$r as $k => $v) {\n"
        "    $$k = $v;\n  }\n}\n$k($v);\n",
        "<?php\nforeach ($rows as $k => $v) {\n  $out[$k] = htmlspecialchars($v);\n}\n"),
    "GOVSOC_Webshell_PHP_Callback_Runs_Input": (
        "z.php",
        "<?php\n$w = substr($_SERVER['HTTP_REFERER'], -7, -4);\n"
        "forward_static_call_array($w.'ert', array($_REQUEST['p']));\n",
        "<?php\n$ids = array_filter($_POST['ids'] ?? [], 'is_numeric');\n"
        "call_user_func([$this, 'render'], $ids);\n"),
    "GOVSOC_Webshell_PHP_Split_Function_Name": (
        "s.php",
        "<?php\n$a = 'as'.'sert';\n$a($_POST['x']);\n",
        "<?php\n$label = 'Assert' . ' that';\necho str_replace('a', 'b', 'banana');\n"),
    "GOVSOC_Webshell_PHP_Writes_Input_To_File": (
        "w.php",
        "<?php\nif (@$_COOKIE['p'] != '') { file_put_contents($_COOKIE['p'], "
        "base64_decode($_POST['d'])); }\n",
        "<?php\nfile_put_contents(__DIR__ . '/cache/page.html', $html);\n"),
    "GOVSOC_Webshell_PHP_XPath_XSLT_Callback": (
        "x2.php",
        "<?php\n$c = $_GET['c'];\n$x = new DOMXPath($doc);\n$x->registerPHPFunctions();\n"
        "$x->evaluate(\"php:functionString('system', '$c')\");\n",
        "<?php\n$x = new DOMXPath($doc);\n$nodes = $x->query('//item');\n"),
    "GOVSOC_Webshell_PHP_Packed_Eval": (
        "p.php",
        "<?php eval(gzinflate(base64_decode('S0lNzs9JLSrJzM8DAA==')));\n",
        "<?php\n$data = json_decode(base64_decode($token), true);\n"),
    "GOVSOC_Webshell_ASP_Eval_Request": (
        "e.asp",
        '<%@ Language="VBScript" %>\n<% eval request("pass") %>\n',
        '<%@ Language="VBScript" %>\n<% Response.Write Request.QueryString("name") %>\n'),
    "GOVSOC_Webshell_ASPX_Process_From_Request": (
        "c.aspx",
        '<%@ Page Language="C#" %>\n<script runat="server">\nvoid Page_Load() {\n'
        'var p = new System.Diagnostics.Process();\n'
        'p.StartInfo = new System.Diagnostics.ProcessStartInfo("cmd.exe", "/c " + '
        'Request.Form["c"]);\np.Start();\n}\n</script>\n',
        '<%@ Page Language="C#" %>\n<script runat="server">\nvoid Page_Load() {\n'
        'Label1.Text = Server.HtmlEncode(Request.QueryString["q"]);\n}\n</script>\n'),
    "GOVSOC_Webshell_ASPX_SQL_Or_File_Browser": (
        "q.aspx",
        '<%@ Page Language="C#" %>\n<script runat="server">\nvoid Run() {\n'
        'var conn = new SqlConnection(Request.Form["conn"]);\n'
        'var cmd = new SqlCommand(Request.Form["sql"], conn);\n'
        'var r = cmd.ExecuteReader();\nvar n = cmd.ExecuteNonQuery();\n}\n</script>\n',
        '<%@ Page Language="C#" %>\n<script runat="server">\nvoid Run() {\n'
        'var conn = new SqlConnection(ConfigurationManager.ConnectionStrings["db"].'
        'ConnectionString);\nvar r = new SqlCommand("SELECT 1", conn).ExecuteReader();\n}\n'
        '</script>\n'),
    "GOVSOC_Webshell_JSP_Exec_From_Request": (
        "c.jsp",
        '<%@ page import="java.io.*" %>\n<% Process p = Runtime.getRuntime().exec('
        'request.getParameter("cmd")); %>\n',
        '<%@ page import="java.io.*" %>\n<% String n = request.getParameter("name"); %>\n'
        '<p>Hello <%= n %></p>\n'),
    "GOVSOC_Webshell_JSP_Encrypted_Class_Loader": (
        "b.jsp",
        '<%@page import="javax.crypto.*,javax.crypto.spec.*"%>\n<%!class U extends '
        'ClassLoader{U(ClassLoader c){super(c);}public Class g(byte []b){return '
        'super.defineClass(b,0,b.length);}}%>\n<%String k="e45e329feb5d925b";'
        'session.putValue("u",k);Cipher c=Cipher.getInstance("AES");'
        'new U(this.getClass().getClassLoader()).g(c.doFinal(new byte[0])).newInstance();%>\n',
        '<%@page import="javax.crypto.*"%>\n<% Cipher c = Cipher.getInstance("AES"); '
        'byte[] out = c.doFinal(data); session.setAttribute("token", out); %>\n'),
    "GOVSOC_Webshell_JSP_Memory_Or_Tunnel": (
        "m.jsp",
        '<%@ page import="org.apache.catalina.core.StandardContext" %>\n<% StandardContext '
        'ctx = (StandardContext) req.getContext(); ctx.addFilterDef(def); '
        'ctx.addFilterMapBefore(map); %>\n',
        '<%@ page import="java.util.*" %>\n<% List<String> items = new ArrayList<>(); %>\n'),
    "GOVSOC_Webshell_JSP_Unicode_Escaped": (
        "u.jsp",
        '<%@page import="java.io.*"%>\n<%!\n' + (
            "\\u0053\\u0074\\u0072\\u0069\\u006e\\u0067\\u0020\\u0050\\u0077\\u0064"
            "\\u003d\\u0022\\u0061\\u0022\\u003b\\u0053\\u0074\\u0072\\u0069\\u006e\n") * 10
        + "%>\n",
        '<%@page import="java.io.*"%>\n<% String msg = "Xin ch\\u00e0o"; %>\n<%= msg %>\n'),
    "GOVSOC_Webshell_CFM_Execute_Or_SQL": (
        "x.cfm",
        '<cfif isDefined("form.cmd")>\n<cfexecute name="#form.cmd#" arguments="#form.args#" '
        'timeout="5" variable="out"></cfexecute>\n<cfoutput>#out#</cfoutput>\n</cfif>\n',
        '<cfquery name="q" datasource="portal">SELECT * FROM news WHERE id = '
        '<cfqueryparam value="#url.id#" cfsqltype="cf_sql_integer"></cfquery>\n'),
    "GOVSOC_Webshell_Perl_CGI_Command": (
        "c.pl",
        '#!/usr/bin/perl\nuse CGI;\nmy $c = CGI::param("command");\n'
        'print "Content-type: text/html\\n\\n";\nprint `$c`;\n',
        '#!/usr/bin/perl\nuse CGI;\nmy $name = CGI::param("name");\n'
        'print "Content-type: text/html\\n\\nHello ", CGI::escapeHTML($name);\n'),
    "GOVSOC_Defacement_Banner": (
        "index.html",
        "<html><head><title>Hacked By Ghost Team</title></head><body>"
        "<center>owned</center></body></html>",
        "<html><head><title>Cổng thông tin điện tử tỉnh</title></head><body>"
        "<p>How accounts get hacked by phishing, and how to stay safe.</p></body></html>"),
    "GOVSOC_Defacement_Traits": (
        "index.htm",
        "<html><body><h3>Trang web này đã bị hack bởi nhóm X</h3>"
        "<p>Bảo mật quá kém!</p><p>Greetz to: all crew</p></body></html>",
        "<html><body><h3>Thông báo</h3><p>Hệ thống bảo trì từ 22h. "
        "Xin lỗi vì sự bất tiện.</p></body></html>"),
}


@pytest.fixture(scope="module")
def scanner(builtin_compiled):
    return YaraScanner(builtin_compiled)


def test_every_rule_has_samples(builtin_compiled):
    public = {r.identifier for r in builtin_compiled.load() if not r.is_private}
    assert public == set(SAMPLES)


@pytest.mark.parametrize("rule", sorted(SAMPLES))
def test_rule_fires_on_positive_and_not_on_benign(scanner, rule):
    name, positive, benign = SAMPLES[rule]
    hits = {m.rule for m in scanner.scan_payload(positive.encode(), name)}
    assert rule in hits
    quiet = {m.rule for m in scanner.scan_payload(benign.encode(), name)}
    assert quiet == set()


def test_rules_carry_severity_and_attack_meta(builtin_compiled):
    for rule in builtin_compiled.load():
        if rule.is_private:
            continue
        assert rule.meta.get("severity") in ("high", "critical"), rule.identifier
        assert rule.meta.get("mitre_attack", "").startswith("T1"), rule.identifier
        assert rule.meta.get("description"), rule.identifier


def test_backtick_shell_in_code_but_not_in_documentation(scanner):
    rule = "GOVSOC_Webshell_PHP_Command_Exec_On_Input"
    shell = b"<?php echo `$_GET['c']`; ?>"
    doc = (b"<?php\n/**\n * Reads the `$_POST['action']` field sent by the form.\n */\n"
           b"function handle() { return sanitize_key($_POST['action']); }\n")
    assert rule in {m.rule for m in scanner.scan_payload(shell, "a.php")}
    assert rule not in {m.rule for m in scanner.scan_payload(doc, "b.php")}

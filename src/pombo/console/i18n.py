"""Console labels in English and Brazilian Portuguese; ?lang= switches, a cookie remembers."""

from __future__ import annotations

from collections.abc import Callable, Mapping

LANGS = ("pt", "en")
DEFAULT = "pt"
COOKIE = "pombo_console_lang"

# key: (English, Portuguese)
LABELS: dict[str, tuple[str, str]] = {
    "app": ("Pombo operator console", "Console do operador Pombo"),
    "skip": ("Skip to content", "Pular para o conteúdo"),
    "nav": ("Sections", "Seções"),
    "overview": ("Overview", "Visão geral"),
    "customers": ("Customers and resellers", "Clientes e revendas"),
    "customers_short": ("Customers", "Clientes"),
    "messages": ("Messages", "Mensagens"),
    "inbound": ("Inbound", "Recebidas"),
    "search_inbound": ("Search inbound messages", "Buscar mensagens recebidas"),
    "inbound_text": ("Text contains", "Texto contém"),
    "only_unrouted": ("Only unrouted", "Só as não roteadas"),
    "unrouted": ("unrouted", "não roteada"),
    "no_inbound": ("No inbound message matches.", "Nenhuma mensagem recebida encontrada."),
    "from_number": ("From", "De"),
    "to_number": ("To", "Para"),
    "received_at": ("Received", "Recebida"),
    "reply_to": ("Answers", "Responde a"),
    "routed_by": ("Routed by", "Roteada por"),
    "routed_numbers": ("number", "número"),
    "routed_correlation": ("provider", "provedor"),
    "routed_window": ("reply window", "janela de resposta"),
    "replies": ("Replies", "Respostas"),
    "no_replies": ("No reply.", "Nenhuma resposta."),
    "opt_outs": ("Opted out by the handset", "Descadastrados pelo celular"),
    "opt_changes": ("Opt-out and opt-in changes", "Descadastros e recadastros"),
    "opt_out": ("opt-out", "descadastro"),
    "opt_in": ("opt-in", "recadastro"),
    "word": ("Word", "Palavra"),
    "connections": ("Connections", "Conexões"),
    "logout": ("Log out", "Sair"),
    "signed_in_as": ("Signed in as", "Conectado como"),
    "language": ("Language", "Idioma"),
    "login_title": ("Operator sign-in", "Acesso do operador"),
    "username": ("Username", "Usuário"),
    "password": ("Password", "Senha"),
    "sign_in": ("Sign in", "Entrar"),
    "login_failed": ("Wrong username or password.", "Usuário ou senha incorretos."),
    "login_199": ("This address is blocked.", "Este endereço está bloqueado."),
    "login_131": ("Too many failed attempts from this address. Try again in 10 minutes.",
                  "Tentativas demais deste endereço. Tente de novo em 10 minutos."),
    "login_132": ("Too many failed attempts for this user from here. Try again in 10 minutes.",
                  "Tentativas demais para este usuário a partir daqui. Tente de novo em 10 minutos."),
    "csrf_failed": ("The form expired. Please try again.", "O formulário expirou. Tente de novo."),
    "logged_out": ("You have logged out.", "Você saiu."),
    "sends_per_minute": ("Sends per minute (last hour)", "Envios por minuto (última hora)"),
    "accepted": ("Accepted (OK)", "Aceitas (OK)"),
    "waiting": ("Waiting (WR)", "Aguardando (WR)"),
    "provider_error": ("Provider error (300)", "Erro do provedor (300)"),
    "rejected": ("Rejected", "Rejeitadas"),
    "rejected_code": ("Rejected {code}", "Rejeitadas {code}"),
    "rejections_note": ("Rejected requests of every server process, written every few seconds.",
                        "Requisições rejeitadas de todos os processos, gravadas a cada poucos segundos."),
    "rejections_title": ("Rejected requests", "Requisições rejeitadas"),
    "rejections_counts": ("Last 24 h by code", "Últimas 24 h por código"),
    "rejections_recent": ("Newest kept (tokens masked)", "Mais recentes guardadas (tokens mascarados)"),
    "rejections_search": ("Destination, parameter, token prefix or IP",
                          "Destino, parâmetro, prefixo do token ou IP"),
    "when": ("When", "Quando"),
    "code": ("Code", "Código"),
    "ip": ("IP", "IP"),
    "credential": ("Credential", "Credencial"),
    "parameters": ("Parameters", "Parâmetros"),
    "delivery_rate": ("Delivery per connection (last hour)", "Entrega por conexão (última hora)"),
    "upstream_latency": ("Upstream answer time, seconds (last hour)",
                         "Tempo de resposta do provedor, segundos (última hora)"),
    "latency_note": ("Average per minute, from accept to the provider's answer.",
                     "Média por minuto, do aceite à resposta do provedor."),
    "low_balances": ("Balances running low", "Saldos acabando"),
    "low_note": ("Available credit (balance above the credit limit) against the last 24 h spend.",
                 "Crédito disponível (saldo acima do limite) frente ao gasto das últimas 24 h."),
    "last_minute": ("Sends, last minute", "Envios no último minuto"),
    "last_hour": ("Sends, last hour", "Envios na última hora"),
    "in_flight": ("Waiting for provider now", "Aguardando provedor agora"),
    "rejected_hour": ("Rejected, last hour", "Rejeitadas na última hora"),
    "live": ("Live: refreshes every 5 s", "Ao vivo: atualiza a cada 5 s"),
    "updated_at": ("Updated", "Atualizado"),
    "offline": ("Could not refresh", "Falha ao atualizar"),
    "as_table": ("Show as table", "Ver como tabela"),
    "minute": ("Minute", "Minuto"),
    "total": ("Total", "Total"),
    "connection": ("Connection", "Conexão"),
    "average": ("Average", "Média"),
    "maximum": ("Maximum", "Máximo"),
    "available": ("Available", "Disponível"),
    "spend_24h": ("Spent, 24 h", "Gasto em 24 h"),
    "hours_left": ("Hours left", "Horas restantes"),
    "no_data": ("No data yet.", "Ainda sem dados."),
    "search": ("Search", "Buscar"),
    "filter_customers": ("Name or id", "Nome ou id"),
    "id": ("Id", "Id"),
    "name": ("Name", "Nome"),
    "balance": ("Balance", "Saldo"),
    "credit_limit": ("Credit limit", "Limite de crédito"),
    "provider": ("Connection", "Conexão"),
    "status": ("Status", "Situação"),
    "active": ("Active", "Ativo"),
    "inactive": ("Inactive", "Inativo"),
    "yes": ("yes", "sim"),
    "no": ("no", "não"),
    "tokens": ("Tokens", "Tokens"),
    "parent": ("Reseller", "Revenda"),
    "children": ("Customers below", "Clientes abaixo"),
    "chain": ("Reseller chain", "Cadeia de revendas"),
    "none": ("none", "nenhum"),
    "settings": ("Settings", "Configuração"),
    "sms_enabled": ("SMS enabled", "SMS habilitado"),
    "tokens_blocked": ("Tokens blocked", "Tokens bloqueados"),
    "night_cap": ("Night cap", "Limite noturno"),
    "night_window": ("Night window", "Janela noturna"),
    "max_length": ("Maximum length", "Tamanho máximo"),
    "ip_allowlist": ("IP allow-list", "IPs permitidos"),
    "any": ("any", "qualquer"),
    "tariffs": ("Tariffs", "Tarifas"),
    "prefix": ("Prefix", "Prefixo"),
    "value": ("Value", "Valor"),
    "token": ("Token", "Token"),
    "user": ("User", "Usuário"),
    "created": ("Created", "Criado"),
    "revoked": ("Revoked", "Revogado"),
    "revoke": ("Revoke", "Revogar"),
    "revoke_done": ("Token {prefix}… revoked.", "Token {prefix}… revogado."),
    "issue_token": ("Issue a new token", "Emitir novo token"),
    "token_issued": ("New token", "Novo token"),
    "token_once": ("Copy it now: it is shown only once and stored only as a hash.",
                   "Copie agora: ele é mostrado só uma vez e guardado apenas como hash."),
    "back_to": ("Back to {name}", "Voltar para {name}"),
    "block_list": ("Block list", "Lista de bloqueio"),
    "models": ("Approved models", "Modelos aprovados"),
    "users": ("Users", "Usuários"),
    "send_permission": ("May send", "Pode enviar"),
    "ledger": ("Ledger (latest)", "Extrato (recente)"),
    "amount": ("Amount", "Valor"),
    "cause": ("Cause", "Motivo"),
    "note": ("Note", "Observação"),
    "top_up": ("Top up", "Adicionar crédito"),
    "top_up_help": ("A negative amount debits. The note goes into the ledger.",
                    "Valor negativo debita. A observação vai para o extrato."),
    "top_up_done": ("Balance is now {balance}.", "O saldo agora é {balance}."),
    "amount_invalid": ("Amount: a non-zero number with at most 4 decimals.",
                       "Valor: um número diferente de zero com até 4 casas decimais."),
    "note_required": ("A note is required.", "A observação é obrigatória."),
    "recent_messages": ("Messages of this customer", "Mensagens deste cliente"),
    "search_messages": ("Search messages", "Buscar mensagens"),
    "customer": ("Customer", "Cliente"),
    "number": ("Number", "Número"),
    "ctid": ("ctid", "ctid"),
    "cdls_id": ("Message id (cdls_id)", "Id da mensagem (cdls_id)"),
    "date_from": ("From date", "Data inicial"),
    "date_to": ("To date", "Data final"),
    "delivery": ("Delivery", "Entrega"),
    "any_option": ("any", "qualquer"),
    "find": ("Find", "Buscar"),
    "no_messages": ("No message matches.", "Nenhuma mensagem encontrada."),
    "older": ("Older messages", "Mensagens anteriores"),
    "text": ("Text", "Texto"),
    "accents": ("Accents", "Acentos"),
    "parts_short": ("Fewer parts than charged", "Menos partes que as cobradas"),
    "parts_short_line": ("{count} message(s); latest: {segments} segments charged, {parts} part(s) reported",
                         "{count} mensagem(ns); a última: {segments} segmentos cobrados, {parts} parte(s) informada(s)"),
    "parts_short_help": ("Kannel cut long messages: set concatenation = true and max-messages on its sendsms-user.",
                         "O Kannel cortou mensagens longas: use concatenation = true e max-messages no sendsms-user."),
    "accents_keep": ("keep (sent as written)", "manter (enviados como escritos)"),
    "accents_fold": ("fold (ã→a, ç→c: GSM-7, 160 a segment)", "remover (ã→a, ç→c: GSM-7, 160 por segmento)"),
    "accents_help": ("With fold, characters outside GSM 03.38 that have a plain Latin look-alike are replaced "
                     "by it before the body is counted, charged and sent; a body with an emoji still goes "
                     "as UCS-2.",
                     "Com remover, caracteres fora do GSM 03.38 que têm um equivalente latino simples são "
                     "trocados por ele antes de a mensagem ser contada, cobrada e enviada; uma mensagem com "
                     "emoji continua indo em UCS-2."),
    "accents_done": ("Accents: {accents}.", "Acentos: {accents}."),
    "accents_invalid": ("Accents must be keep or fold.", "Acentos deve ser keep ou fold."),
    "save": ("Save", "Salvar"),
    "text_sent": ("Text as sent", "Texto enviado"),
    "text_received": ("Text as received (it differs)", "Texto recebido (difere do enviado)"),
    "created_at": ("Created", "Criada"),
    "segments": ("Segments", "Segmentos"),
    "bad_filter": ("Check the filters: {field}.", "Confira os filtros: {field}."),
    "message_story": ("Message {id}", "Mensagem {id}"),
    "request": ("Request", "Requisição"),
    "checks": ("Checks", "Verificações"),
    "checks_passed": ("Every check passed before the message was logged and charged.",
                      "Todas as verificações passaram antes de a mensagem ser registrada e cobrada."),
    "upstream": ("Upstream exchange", "Troca com o provedor"),
    "upstream_id": ("Provider id", "Id no provedor"),
    "return_log": ("Provider answer", "Resposta do provedor"),
    "reports": ("Delivery reports", "Relatórios de entrega"),
    "raw": ("Raw", "Bruto"),
    "ledger_rows": ("Ledger rows", "Lançamentos"),
    "timeline": ("Story", "Histórico"),
    "ev_accepted": ("Accepted, charged and logged", "Aceita, cobrada e registrada"),
    "ev_answered_ok": ("Provider accepted it", "Provedor aceitou"),
    "ev_answered_300": ("Provider refused it; charge refunded", "Provedor recusou; cobrança estornada"),
    "ev_waiting": ("Still waiting for the provider", "Ainda aguardando o provedor"),
    "ev_sent": ("Sent to the handset network", "Enviada à operadora"),
    "ev_final": ("Final delivery state: {state}", "Estado final de entrega: {state}"),
    "ev_report": ("Report received: {state}", "Relatório recebido: {state}"),
    "encoding": ("Encoding", "Codificação"),
    "sender": ("Sender", "Remetente"),
    "campaign": ("Campaign (cp_id)", "Campanha (cp_id)"),
    "call": ("Call (cd_id)", "Chamada (cd_id)"),
    "kind": ("Kind", "Tipo"),
    "url": ("URL", "URL"),
    "enabled": ("Enabled", "Habilitada"),
    "disabled": ("Disabled", "Desabilitada"),
    "enable": ("Enable", "Habilitar"),
    "disable": ("Disable", "Desabilitar"),
    "timeouts": ("Timeouts (ack / final)", "Tempos limite (aceite / final)"),
    "sends_hour": ("Sends, 1 h", "Envios, 1 h"),
    "error_rate": ("Error rate", "Taxa de erro"),
    "delivered_rate": ("Delivered", "Entregues"),
    "latency": ("Answer time", "Tempo de resposta"),
    "last_error": ("Last provider error", "Último erro do provedor"),
    "customers_routed": ("Customers routed", "Clientes roteados"),
    "health": ("Health", "Saúde"),
    "health_ok": ("healthy", "saudável"),
    "health_degraded": ("degraded", "degradada"),
    "health_down": ("failing", "falhando"),
    "health_idle": ("idle", "ociosa"),
    "health_off": ("off", "desligada"),
    "disable_warning": ("Customers routed to a disabled connection get code 220.",
                        "Clientes roteados para uma conexão desabilitada recebem o código 220."),
    "connection_on": ("Connection {name} enabled.", "Conexão {name} habilitada."),
    "connection_off": ("Connection {name} disabled.", "Conexão {name} desabilitada."),
    "not_found": ("Not found.", "Não encontrado."),
    "forbidden": ("Forbidden.", "Proibido."),
    "check_220": ("Provisioned for SMS, connection enabled (220)", "Habilitado para SMS, conexão ativa (220)"),
    "check_230": ("Destination given (230)", "Destino informado (230)"),
    "check_235": ("Text given (235)", "Texto informado (235)"),
    "check_238": ("Length within the limit (238)", "Tamanho dentro do limite (238)"),
    "check_240": ("Valid mobile number (240)", "Celular válido (240)"),
    "check_260": ("Not on a block list (260)", "Fora das listas de bloqueio (260)"),
    "check_270": ("Text filter / approved model (270)", "Filtro de texto / modelo aprovado (270)"),
    "check_244": ("No duplicate in the window (244)", "Sem duplicidade na janela (244)"),
    "check_245": ("Under the night cap (245)", "Abaixo do limite noturno (245)"),
    "check_255": ("Tariff found for the chain (255)", "Tarifa encontrada na cadeia (255)"),
    "check_250": ("Credit in the whole chain (250)", "Crédito em toda a cadeia (250)"),
    "st_pending": ("pending", "pendente"),
    "st_sent": ("sent", "enviada"),
    "st_delivered": ("delivered", "entregue"),
    "st_undelivered": ("undelivered", "não entregue"),
    "st_expired": ("expired", "expirada"),
    "st_rejected": ("rejected", "rejeitada"),
    "st_unknown": ("unknown", "desconhecido"),
    "add": ("Add", "Adicionar"),
    "remove": ("Remove", "Remover"),
    "add_or_change": ("Add or change", "Adicionar ou alterar"),
    "tariff_help": ("Value per message, e.g. 0.08. An existing prefix and connection gets the new value; leave "
                    "the connection empty for any.",
                    "Valor por mensagem, ex.: 0.08. Um prefixo e conexão que já existem recebem o novo valor; "
                    "deixe a conexão vazia para qualquer uma."),
    "blocklist_help": ("Sends to a blocked number answer 260. Numbers are stored as sends will look (55 + DDD).",
                       "Envios para um número bloqueado recebem 260. Os números são guardados como os envios "
                       "os verão (55 + DDD)."),
    "models_help": ("When a customer has models, a text that matches none answers 270.",
                    "Quando o cliente tem modelos, um texto que não corresponde a nenhum recebe 270."),
    "edit_invalid": ("Not saved: {problem}", "Não salvo: {problem}"),
    "edit_done_tariffs": ("Tariffs saved.", "Tarifas salvas."),
    "edit_done_blocklist": ("Block list saved.", "Lista de bloqueio salva."),
    "edit_done_models": ("Models saved.", "Modelos salvos."),
    "audit_title": ("Changes made in the console", "Alterações feitas no console"),
    "operator_name": ("Operator", "Operador"),
    "change": ("Change", "Alteração"),
    "before": ("Before", "Antes"),
    "after": ("After", "Depois"),
    "audit_tariff_set": ("tariff set", "tarifa definida"),
    "audit_tariff_remove": ("tariff removed", "tarifa removida"),
    "audit_blocklist_add": ("number blocked", "número bloqueado"),
    "audit_blocklist_remove": ("number unblocked", "número desbloqueado"),
    "audit_model_add": ("model added", "modelo adicionado"),
    "audit_model_edit": ("model changed", "modelo alterado"),
    "audit_model_remove": ("model removed", "modelo removido"),
    "cause_topup": ("top-up", "recarga"),
    "cause_opening": ("opening", "abertura"),
    "cause_message": ("message", "mensagem"),
    "cause_refund": ("refund", "estorno"),
}


def translator(lang: str) -> Callable[..., str]:
    """t(key, **values) in `lang`; an unknown key shows itself (and is caught by the tests)."""
    index = 1 if lang == "pt" else 0

    def t(key: str, **values: object) -> str:
        pair = LABELS.get(key)
        text = pair[index] if pair else key
        return text.format(**values) if values else text

    return t


def choose(query: Mapping[str, str], cookies: Mapping[str, str], accept_language: str) -> tuple[str, bool]:
    """(language, whether to remember it): ?lang=, then the cookie, then Accept-Language."""
    asked = query.get("lang", "")
    if asked in LANGS:
        return asked, True
    remembered = cookies.get(COOKIE, "")
    if remembered in LANGS:
        return remembered, False
    best, best_q = DEFAULT, -1.0
    for part in accept_language.split(","):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower()[:2]
        if lang not in LANGS:
            continue
        try:
            q = float(params.strip()[2:]) if params.strip().startswith("q=") else 1.0
        except ValueError:
            q = 0.0
        if q > best_q:
            best, best_q = lang, q
    return best, False


def decimal_point(text: str, lang: str) -> str:
    """'1234.5000' -> '1.234,5000' in Portuguese, '1,234.5000' in English."""
    sign = "-" if text.startswith("-") else ""
    whole, _, frac = text.lstrip("-").partition(".")
    groups = f"{int(whole):,}"
    if lang == "pt":
        groups = groups.replace(",", ".")
        return f"{sign}{groups},{frac}" if frac else sign + groups
    return f"{sign}{groups}.{frac}" if frac else sign + groups

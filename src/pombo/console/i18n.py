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
    "rejections_note": ("Rejections are counted by this server process while the console is open.",
                        "Rejeições são contadas por este processo enquanto o console está aberto."),
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
    "smpp_binds": ("SMPP binds (this worker)", "Binds SMPP (este processo)"),
    "bind_bound": ("bound", "conectado"),
    "bind_binding": ("binding", "conectando"),
    "bind_down": ("down", "fora"),
    "window_in_use": ("window in use", "janela em uso"),
    "smpp_rates": ("submit_sm / receipts per second", "submit_sm / recibos por segundo"),
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

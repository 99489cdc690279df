/*-------------------------------------------------------------------------
 *
 * method.c
 *	  The table of training methods, their options, and the stored params.
 *
 * train(..., method => 'x', options => '{...}') and the named arguments
 * that predate options (factors, iterations, ...) set the same options: a
 * method's option table says which keys it accepts, their types, defaults
 * and ranges, and every key is checked here, with errors that name the
 * key, the value and what is allowed.  What a training used is stored as
 * recsys.models.params (every option of the method, defaults included,
 * plus "method"), and read back with the same table when a model is
 * served, leniently (keys of older versions are ignored, missing keys take
 * their defaults), so a model keeps the options it was trained with.
 *
 * IDENTIFICATION
 *	  src/method.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "method.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/json.h"
#include "utils/numeric.h"
#include "utils/tuplestore.h"

/* Every method, in the order the hints list them */
static const RecsysMethod *const methods[] = {
	&MethodAls,
	&MethodIals,
	&MethodItemKnn,
	&MethodEase,
	&MethodContent,
	&MethodPopular,
};

/* The method of that name, or NULL */
const RecsysMethod *
MethodByName(const char *name)
{
	for (int i = 0; i < (int) lengthof(methods); i++)
		if (strcmp(methods[i]->name, name) == 0)
			return methods[i];
	return NULL;
}

/* The method of that name; errors, listing the methods, if there is none */
const RecsysMethod *
MethodLookup(const char *name)
{
	const RecsysMethod *m = MethodByName(name);
	StringInfoData list;

	if (m != NULL)
		return m;
	initStringInfo(&list);
	for (int i = 0; i < (int) lengthof(methods); i++)
		appendStringInfo(&list, "%s%s (%s)", i > 0 ? ", " : "",
						 methods[i]->name, methods[i]->summary);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown method \"%s\"", name),
			 errhint("Supported methods: %s.", list.data)));
	return NULL;				/* keep compiler quiet */
}

/* The one error for a capability a method lacks (a NULL slot) */
void
MethodNotSupported(const RecsysMethod *m, const char *model, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s is not supported by method \"%s\" of model \"%s\"",
					what, m->name, model),
			 errhint("Use a model trained with a method that supports it (SELECT * FROM recsys.methods() lists what each supports).")));
}

/* The option of a method named key, or NULL */
static const MethodOption *
FindOption(const RecsysMethod *m, const char *key)
{
	for (const MethodOption *o = m->options; o->name != NULL; o++)
		if (strcmp(o->name, key) == 0)
			return o;
	return NULL;
}

/* Whether a method accepts the option key */
bool
MethodHasOption(const RecsysMethod *m, const char *key)
{
	return FindOption(m, key) != NULL;
}

/* Set an option's value in p (numbers, choice values, booleans as 0/1) */
static void
StoreOption(const MethodOption *o, RecsysParams *p, double x)
{
	char	   *field = (char *) p + o->offset;

	switch (o->kind)
	{
		case METHOD_OPTION_INT:
		case METHOD_OPTION_CHOICE:
			*(int *) field = (int) x;
			break;
		case METHOD_OPTION_REAL:
			*(double *) field = x;
			break;
		case METHOD_OPTION_BOOL:
			*(bool *) field = x != 0.0;
			break;
		case METHOD_OPTION_TEXT:
			*(char **) field = NULL;	/* text options have no default */
			break;
	}
}

/* Every option of the method at its default, and p->method = m */
void
MethodDefaults(const RecsysMethod *m, RecsysParams *p)
{
	memset(p, 0, sizeof(RecsysParams));
	p->method = m;
	for (const MethodOption *o = m->options; o->name != NULL; o++)
		StoreOption(o, p, o->def);
}

/* The names of a choice option, as "a, b, c" */
static char *
ChoiceNames(const MethodOption *o)
{
	StringInfoData s;

	initStringInfo(&s);
	for (const MethodChoice *c = o->choices; c->name != NULL; c++)
		appendStringInfo(&s, "%s%s", c == o->choices ? "" : ", ", c->name);
	return s.data;
}

/* The names of a method's options, as "a, b, c" */
static char *
OptionNames(const RecsysMethod *m)
{
	StringInfoData s;

	initStringInfo(&s);
	for (const MethodOption *o = m->options; o->name != NULL; o++)
		appendStringInfo(&s, "%s%s", o == m->options ? "" : ", ", o->name);
	return s.data;
}

/* A JSON value as text, for messages */
static char *
JsonValueText(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return psprintf("\"%.*s\"", v->val.string.len, v->val.string.val);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return v->val.boolean ? "true" : "false";
		case jbvBinary:
			return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
		default:
			return "?";
	}
}

/* The kind of value an option takes, for messages */
static const char *
KindName(const MethodOption *o)
{
	switch (o->kind)
	{
		case METHOD_OPTION_INT:
			return "an integer";
		case METHOD_OPTION_REAL:
			return "a number";
		case METHOD_OPTION_CHOICE:
			return "a string";
		case METHOD_OPTION_BOOL:
			return "true or false";
		case METHOD_OPTION_TEXT:
			return "a string";
	}
	return "?";
}

/* Error for a value of the wrong type */
static void
WrongType(const RecsysMethod *m, const MethodOption *o, JsonbValue *v)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("option \"%s\" of method \"%s\" must be %s, got %s",
					o->name, m->name, KindName(o), JsonValueText(v)),
			 o->kind == METHOD_OPTION_CHOICE ?
			 errhint("Choose one of: %s.", ChoiceNames(o)) :
			 errhint("%s: %s.", o->name, o->help)));
}

/* Error for a number outside the option's range */
static void
OutOfRange(const RecsysMethod *m, const MethodOption *o, const char *value)
{
	if (o->max < DBL_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" of method \"%s\" must be between %.15g%s and %.15g, got %s",
						o->name, m->name, o->min, o->min_open ? " (exclusive)" : "",
						o->max, value),
				 errhint("%s: %s.", o->name, o->help)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("option \"%s\" of method \"%s\" must be a finite number %s %.15g, got %s",
					o->name, m->name, o->min_open ? ">" : ">=", o->min, value),
			 errhint("%s: %s.", o->name, o->help)));
}

/*
 * Set one option from a JSON value, checking its type and range.  given,
 * if not NULL, has one flag per option of the method: a key set twice
 * (as a named argument and in options) is an error.
 */
void
MethodSetOption(const RecsysMethod *m, RecsysParams *p, const char *key,
				JsonbValue *v, bool *given)
{
	const MethodOption *o = FindOption(m, key);
	double		x = 0.0;

	if (o == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("method \"%s\" has no option \"%s\"", m->name, key),
				 m->options[0].name != NULL ?
				 errhint("Options of method %s: %s.", m->name, OptionNames(m)) :
				 errhint("Method %s has no options.", m->name)));
	if (given)
	{
		int			idx = (int) (o - m->options);

		if (given[idx])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"%s\" is given twice", key),
					 errhint("Pass it either as train's argument %s => ... or in options, not both.",
							 key)));
		given[idx] = true;
	}

	switch (o->kind)
	{
		case METHOD_OPTION_INT:
		case METHOD_OPTION_REAL:
			{
				char	   *text;

				if (v->type != jbvNumeric)
					WrongType(m, o, v);
				text = JsonValueText(v);
				x = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
													   NumericGetDatum(v->val.numeric)));
				if (o->kind == METHOD_OPTION_INT && x != floor(x))
					WrongType(m, o, v);
				if (isnan(x) || isinf(x) || x < o->min || x > o->max ||
					(o->min_open && x == o->min))
					OutOfRange(m, o, text);
				break;
			}
		case METHOD_OPTION_CHOICE:
			{
				char	   *name;
				const MethodChoice *c;

				if (v->type != jbvString)
					WrongType(m, o, v);
				name = pnstrdup(v->val.string.val, v->val.string.len);
				for (c = o->choices; c->name != NULL; c++)
					if (strcmp(c->name, name) == 0)
						break;
				if (c->name == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("unknown %s \"%s\" for method \"%s\"", o->name, name, m->name),
							 errhint("Choose one of: %s.", ChoiceNames(o))));
				x = c->value;
				break;
			}
		case METHOD_OPTION_BOOL:
			if (v->type != jbvBool)
				WrongType(m, o, v);
			x = v->val.boolean ? 1.0 : 0.0;
			break;
		case METHOD_OPTION_TEXT:
			/* null: not given (how params store an option left out) */
			if (v->type == jbvNull)
			{
				*(char **) ((char *) p + o->offset) = NULL;
				return;
			}
			if (v->type != jbvString || v->val.string.len == 0)
				WrongType(m, o, v);
			*(char **) ((char *) p + o->offset) =
				pnstrdup(v->val.string.val, v->val.string.len);
			return;
	}
	StoreOption(o, p, x);
}

/*
 * Set options from a jsonb object of key/value pairs.  lenient: for stored
 * params, unknown keys are skipped (a model trained by an older version,
 * or the "method" key itself); otherwise every key must be an option.
 */
void
MethodParseOptions(const RecsysMethod *m, RecsysParams *p, Jsonb *options,
				   bool lenient, bool *given)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	if (!JB_ROOT_IS_OBJECT(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options must be a JSON object"),
				 errhint("For example options => '{\"neighbors\": 50}'.")));
	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
		{
			if (lenient && !MethodHasOption(m, key))
				continue;
			MethodSetOption(m, p, key, &v, given);
		}
	}
}

/* The name of a choice option's value, or "?" */
const char *
MethodChoiceName(const RecsysMethod *m, const char *option, int value)
{
	const MethodOption *o = FindOption(m, option);

	if (o != NULL && o->kind == METHOD_OPTION_CHOICE)
		for (const MethodChoice *c = o->choices; c->name != NULL; c++)
			if (c->value == value)
				return c->name;
	return "?";
}

/* Whether an option's value is its default (text options: not given) */
static bool
IsDefault(const MethodOption *o, const char *field)
{
	switch (o->kind)
	{
		case METHOD_OPTION_INT:
		case METHOD_OPTION_CHOICE:
			return *(const int *) field == (int) o->def;
		case METHOD_OPTION_REAL:
			return *(const double *) field == o->def;
		case METHOD_OPTION_BOOL:
			return *(const bool *) field == (o->def != 0.0);
		case METHOD_OPTION_TEXT:
			return *(char *const *) field == NULL;
	}
	return false;
}

/*
 * What a training used, as jsonb text: "method" and every option of the
 * method.  float8out_internal gives the shortest text that reads back
 * exactly, so serving reads the very values training used.
 */
char *
MethodParamsJson(const RecsysParams *p)
{
	const RecsysMethod *m = p->method;
	bool		features = p->item_features || p->item_text || p->user_features;
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfo(&s, "{\"method\": \"%s\"", m->name);

	for (const MethodOption *o = m->options; o->name != NULL; o++)
	{
		const char *field = (const char *) p + o->offset;

		/* Unused options stay out, so models without features read as before */
		if (o->kind == METHOD_OPTION_TEXT && *(char *const *) field == NULL)
			continue;
		if (o->show == OPTION_SHOW_WITH_FEATURES && !features)
			continue;
		if (o->show == OPTION_SHOW_IF_SET && IsDefault(o, field))
			continue;
		if (o->show == OPTION_SHOW_WITH_SUBSPACE &&
			p->solver != RECSYS_SOLVER_SUBSPACE)
			continue;
		appendStringInfo(&s, ", \"%s\": ", o->name);
		switch (o->kind)
		{
			case METHOD_OPTION_INT:
				appendStringInfo(&s, "%d", *(const int *) field);
				break;
			case METHOD_OPTION_REAL:
				appendStringInfoString(&s, float8out_internal(*(const double *) field));
				break;
			case METHOD_OPTION_CHOICE:
				appendStringInfo(&s, "\"%s\"",
								 MethodChoiceName(m, o->name, *(const int *) field));
				break;
			case METHOD_OPTION_BOOL:
				appendStringInfoString(&s, *(const bool *) field ? "true" : "false");
				break;
			case METHOD_OPTION_TEXT:
				escape_json(&s, *(char *const *) field);
				break;
		}
	}
	appendStringInfoChar(&s, '}');
	return s.data;
}

/* An option's default as text, as MethodParamsJson writes it */
static char *
DefaultText(const RecsysMethod *m, const MethodOption *o)
{
	switch (o->kind)
	{
		case METHOD_OPTION_INT:
			return psprintf("%d", (int) o->def);
		case METHOD_OPTION_REAL:
			return pstrdup(float8out_internal(o->def));
		case METHOD_OPTION_CHOICE:
			return pstrdup(MethodChoiceName(m, o->name, (int) o->def));
		case METHOD_OPTION_BOOL:
			return o->def != 0.0 ? "true" : "false";
		case METHOD_OPTION_TEXT:
			return "none";
	}
	return "?";
}

/* What an option allows, as text: a range or the choices */
static char *
AllowedText(const MethodOption *o)
{
	switch (o->kind)
	{
		case METHOD_OPTION_INT:
			return psprintf("%.0f .. %.0f", o->min, o->max);
		case METHOD_OPTION_REAL:
			if (o->max < DBL_MAX)
				return psprintf("%s%g .. %g", o->min_open ? "> " : "", o->min, o->max);
			return psprintf("%s %g", o->min_open ? ">" : ">=", o->min);
		case METHOD_OPTION_CHOICE:
			return ChoiceNames(o);
		case METHOD_OPTION_BOOL:
			return "true, false";
		case METHOD_OPTION_TEXT:
			return "text (see description)";
	}
	return "?";
}

/* The SQL name of an option's kind */
static const char *
KindSqlName(const MethodOption *o)
{
	switch (o->kind)
	{
		case METHOD_OPTION_INT:
			return "integer";
		case METHOD_OPTION_REAL:
			return "number";
		case METHOD_OPTION_CHOICE:
			return "text";
		case METHOD_OPTION_BOOL:
			return "boolean";
		case METHOD_OPTION_TEXT:
			return "text";
	}
	return "?";
}

PG_FUNCTION_INFO_V1(recsys_methods);

/*
 * recsys.methods(): every training method, what it learns from and what it
 * supports, from the method table.
 */
Datum
recsys_methods(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < (int) lengthof(methods); i++)
	{
		const RecsysMethod *m = methods[i];
		Datum		values[8];
		bool		nulls[8] = {false, false, false, false, false, false, false, false};

		values[0] = CStringGetTextDatum(m->name);
		values[1] = CStringGetTextDatum(m->summary);
		values[2] = CStringGetTextDatum(m->explicit_values ? "ratings" : "feedback");
		values[3] = CStringGetTextDatum(m->factors ? "factors" :
										m->neighbors ? "item neighbours" :
										m->features ? "item profiles" : "item scores");
		values[4] = BoolGetDatum(m->similar_items != NULL);
		values[5] = BoolGetDatum(m->factors);
		values[6] = BoolGetDatum(m->explain != NULL);
		values[7] = BoolGetDatum(m->features);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(recsys_method_options);

/*
 * recsys.method_options(method): the options train() accepts for a method,
 * with their type, default, allowed values and meaning.
 */
Datum
recsys_method_options(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const RecsysMethod *m;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		return (Datum) 0;
	m = MethodLookup(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	for (const MethodOption *o = m->options; o->name != NULL; o++)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		values[0] = CStringGetTextDatum(o->name);
		values[1] = CStringGetTextDatum(KindSqlName(o));
		values[2] = CStringGetTextDatum(DefaultText(m, o));
		values[3] = CStringGetTextDatum(AllowedText(o));
		values[4] = CStringGetTextDatum(o->help);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
